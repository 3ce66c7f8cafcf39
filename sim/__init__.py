"""trainsim: forecast what a deep-learning training project will cost and when it will finish."""

__version__ = "0.1.0"
