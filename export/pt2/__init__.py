"""PyTorch → ``torch.export`` programs (.pt2), verified by loading them back."""
