"""Live classification: a trained model on a network interface (docs/api.md, "Live").

- source.py: AF_PACKET raw socket (+ a BPF filter compiled by libpcap);
- flows.py: the extraction walk as a bounded live flow table that emits each
  biflow once, as soon as it has the model's input or when it ends;
- engine.py: batches of ready flows through the checkpoint's model
  (LiveClassifier, LiveSettings, Decision);
- metrics.py: Prometheus counters per app; run.py: the `classify --live` loop;
- options.py: the command's flags (typer only: the CLI imports it at start).

Nothing is imported here, so `trafficdl --help` does not load the engine.
"""
