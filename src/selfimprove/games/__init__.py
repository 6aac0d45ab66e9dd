"""Self-play games: rules (pure numpy, batched), exact solvers, batched MCTS, bots."""
