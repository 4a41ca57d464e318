"""The derivation: names, passes and the chain-rule records that every printer renders."""
