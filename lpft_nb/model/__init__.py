"""Model layer: the encoder with a linear head, the linear probe, the head-norm mechanism, training.

- `hub`: where a model setting's files are (the embedded model, the tiny test model, a folder, the Hub)
- `classifier`: the pre-trained encoder + linear head (LoRA optional), tokenizers
- `probe`: the paper's LP (cross-validated logistic regression) and its regularisation path
- `head_mechanism`: Prop. 4.2's quantities (class cosines, the norm gradient)
- `train`: tokenisation, batched prediction and the fine-tuning loop
"""
