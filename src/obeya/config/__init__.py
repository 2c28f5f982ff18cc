"""`obeya.yaml`: one file declaring the store, the mapping rules and (later) connections and policies."""

from obeya.config.loader import CONFIG_VARIABLE, ConfigError, load_config
from obeya.config.model import EnvironmentRuleConfig, ObeyaConfig, RulesConfig, StatusRuleConfig

__all__ = [
    "CONFIG_VARIABLE",
    "ConfigError",
    "EnvironmentRuleConfig",
    "ObeyaConfig",
    "RulesConfig",
    "StatusRuleConfig",
    "load_config",
]
