"""One router per resource of `rearag serve`."""
