"""Model-collapse studies E1-E6 (REFERENCES.md): recursive fitting on generated data, vectorized
over many seeds, under the data policies and monitors of `selfimprove.core`."""
