"""M3, the album model of paper §3.3 (Figure 3): M2's blocks under a masked bidirectional LSTM."""
