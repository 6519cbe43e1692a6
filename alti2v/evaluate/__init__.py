"""The --eval stage: score models on held-out posts, compare them with baselines and each other.

- `run`: --eval from models and posts to summary.json, per_tag.csv, the reports (`evaluate`)
- `posts`: the eval split or an --eval-dir, decoded as each model needs it
- `names`: tags of different vocabularies matched by name
- `judge`: every number of --eval from one score matrix, in bounded memory
- `compare`: two models on the same posts, paired: B - A with its interval
- `calibration`: fitted thresholds, calibration error and temperature from score counts
- `baselines`: the frequency prior and approach 3, scored beside the model
- `report`: the plots, the one-page `report.html`, and `comparison.md`

Imports `alti2v.model`, `alti2v.data`, `alti2v.tag.thresholds` (the rules --pred applies) and
the shared modules.
"""
