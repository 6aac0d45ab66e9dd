"""Knowledge distillation: soft labels vs hard labels, temperature, token-level KD."""
