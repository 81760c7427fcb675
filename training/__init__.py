"""Training of both stages of the method (DESIGN.md §1); entry point training/train.py."""
