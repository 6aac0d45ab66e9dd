"""Scale-out back-ends behind `core.executors.Executor` (optional extras): `ray`."""
