"""mmctl: a declarative, reconcile-loop market maker for binary prediction markets."""

__version__ = "0.1.0"
