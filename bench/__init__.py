"""citytwin's benchmark suite: each scenario beside its peer, same run, same machine."""
