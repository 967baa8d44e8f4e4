"""The trade-off study: sweeps over (model, N, window, preset), the paper's figures,
an HTML report and a cost advisor.

Layout, so each piece can be used and tested alone:

    records.py   the JSON-lines record of one cell x fold, reading and aggregating them
    sweep.py     the resumable grid runner over a pluggable cell runner
    runners.py   the real cell runners (centralized trainer, local master + workers)
    cluster_jobs.py  the Kubernetes cell runner (one TrafficTrainingJob per cell x fold)
    advisor.py   the time model T(N) = T1/N + overhead and the recommendations
    figures.py   the paper's Figs. 2, 3 and 4 (matplotlib, Agg)
    html_report.py   a self-contained HTML report
    presets.py   named config presets ("paper", "robust")
"""
