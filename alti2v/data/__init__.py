"""The data stage: the data directory, its posts, the vocabulary and the packed LevelDB dataset.

- `layout`: every path and file name under the data directory (`DataDir`, and per folder
  `PostFiles`, `ModelFiles`, `CheckpointFiles`, `IndexFiles`, `EvalFiles`)
- `posts`: the files that are posts (`imgs/<id>.txt`, its image and `.json`), read and parsed
- `files`: atomic writes of files and folders (`atomic_write_*`, `publish_folder`), and
  reading a JSON file or failing in one line (`read_json`)
- `skips`: the error an unreadable input raises, and which skip reasons are failures
- `vocabulary`: --maeshori, counting tags into `vocab.txt` and `vocab.json`
- `images`: image file to the array the model sees (`load_image`, `to_model_input`)
- `records`: the LevelDB format: keys, values, the meta record, reading them back
- `build`: --build, packing every post into LevelDB (`build_dataset`)

The bottom room: it imports nothing of alti2v but itself and the shared `defaults`, `errors`
and `progress`.
"""
