"""One small file per node: parameters, subscriptions, core calls, publications."""
