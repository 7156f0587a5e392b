"""Rules: rule files in, compiled rules that the engine evaluates out."""
