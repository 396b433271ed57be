"""The controller: owns the event loop, the work queue, the watch on desired state and the reconcilers' scheduling."""
