"""M2, the time-adjusting model of paper §3.2 (Table 2, Figure 3, appendix A.2)."""
