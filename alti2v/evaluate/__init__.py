"""The --eval stage: score a trained model on held-out posts and compare it with baselines.

- `run`: --eval from model and posts to summary.json, per_tag.csv and the report (`evaluate`)
- `judge`: every number of --eval from one score matrix, in bounded memory
- `calibration`: fitted thresholds, calibration error and temperature from score counts
- `baselines`: the frequency prior and approach 3, scored beside the model
- `report`: the plots and the one-page `report.html`

Imports `alti2v.model`, `alti2v.data`, `alti2v.tag.thresholds` (the rules --pred applies) and
the shared modules.
"""
