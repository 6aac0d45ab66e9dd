"""Read the run store, draw plots, write HTML. Never trains."""
