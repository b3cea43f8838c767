"""Many episodes, predictions or validations in parallel: rollout, evaluate, validation."""
