"""Fill <data-dir>/imgs/ with tagged images for alt-i2v: from Danbooru's API, its HTML pages, or
a local folder. The command line is alti2v.cli.scrape; the work is in alti2v.scrape.

    python danbooru_datasetgenerator.py --tags "kantai_collection" --limit 500
    python danbooru_datasetgenerator.py --mode html --start-id 6148688 --limit 10
    python danbooru_datasetgenerator.py --mode import --src ~/my_training_set

Credentials come from DANBOORU_LOGIN and DANBOORU_API_KEY (HTTP Basic); the key is never shown.
The summary goes to stdout, progress and logs to stderr. The exit status (the same as
alt_i2v.py's) is in --help; after Ctrl-C (130) the data dir stays consistent and the next run
resumes.
"""

import sys

from alti2v.cli.scrape import main

if __name__ == "__main__":
    sys.exit(main())
