"""Adapters that let agent frameworks users already have drive swe-env unchanged.

- `swe_env.integrations.minisweagent`: an Environment class for mini-swe-agent
  (`environment_class: swe_env.integrations.minisweagent.SWEEnvEnvironment`) and a batch
  runner that writes mini-swe-agent's `preds.json`. Needs `pip install 'swe-env[minisweagent]'`.
- `swe_env.integrations.trl`: an environment class for TRL's `GRPOTrainer(environment_factory=...)`,
  whose public methods are the agent's tools. Imports nothing of TRL.

Each module imports its framework only when imported itself.
"""
