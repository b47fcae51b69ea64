"""deepscreen's training package: what the recipe's scripts (training/*.py, training/data/,
training/whisper/) share, imported as `deepscreen_train.<module>` once `pip install -e training`
has run.

- `metrics`: EER, DET curve, minDCF and detection at low false alarms, as the engine computes them;
- `windowing`: the engine's windows and silence rules (src/audio/windows.rs, activity.rs);
- `calibration`: the logistic calibration of window logits, file scores, thresholds;
- `common`: the data rules' splits and generator table, audio I/O, the CSV lists;
- `channel`: the channel chain applied to both classes alike;
- `torch_model`: the PyTorch reference of the engine's spectrogram models;
- `whisper_reference`, `ct2`: the numpy Whisper encoder reference and the CTranslate2 reader.
"""
