"""Reads a .tflite file's metadata with tflite-support's MetadataDisplayer, as Android Studio's
model viewer and the TFLite Task Library do.

    python metadata.py MODEL -> JSON: {"metadata": <the metadata as JSON text>,
                                       "files": {name: text of each packed file}}
Run in the clients' virtualenv (requirements.txt), not the project's.
"""

import json
import sys

from tflite_support import metadata


def main():
    displayer = metadata.MetadataDisplayer.with_model_file(sys.argv[1])
    files = {name: displayer.get_associated_file_buffer(name).decode()
             for name in displayer.get_packed_associated_file_list()}
    print(json.dumps({"metadata": displayer.get_metadata_json(), "files": files}))


if __name__ == "__main__":
    main()
