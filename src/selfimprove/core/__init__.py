"""The loop engine, run store, config, seeding and guards. Imports no domain and no torch."""
