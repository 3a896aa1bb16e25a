"""Model layer: the encoder with a linear head, the linear probe, the head-norm mechanism, training.

- `classifier`: the pre-trained encoder + linear head (LoRA optional), tokenizers, the tiny test model
- `probe`: the paper's LP (cross-validated logistic regression) and its regularisation path
- `head_mechanism`: Prop. 4.2's quantities (class cosines, the norm gradient)
- `train`: tokenisation, batched prediction and the fine-tuning loop
"""
