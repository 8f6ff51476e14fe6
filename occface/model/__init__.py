"""Pro-UIGAN reference model (see docs/model_card.md)."""
