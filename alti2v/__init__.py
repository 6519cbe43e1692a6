"""alt-i2v: tag anime illustrations with a VGG16 transfer-learning model.

One module per pipeline stage; the scripts `alt_i2v.py` and `danbooru_datasetgenerator.py`
parse arguments and call into them.
"""

__version__ = "0.1.0"
PROJECT_URL = "https://github.com/alt-i2v/alt-i2v"
