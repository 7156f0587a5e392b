"""Configuration: alertd.toml in, a validated Config (with secrets substituted) out."""

from alertd.config.load import LoadedConfig, load_config
from alertd.config.model import Config

__all__ = ["Config", "LoadedConfig", "load_config"]
