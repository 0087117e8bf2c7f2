#!/usr/bin/env bash
# Makes the virtualenv of Android's clients (MediaPipe Tasks, tflite-support) that the tests in
# tests/export/test_android_clients.py run files in: ${MOBILENETS_CLIENTS:-/tmp/mobilenets-clients}.
# tflite-support needs Debian's libusb-1.0-0 (apt-get install libusb-1.0-0).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
VENV="${MOBILENETS_CLIENTS:-/tmp/mobilenets-clients}"
python3 -m venv "$VENV"
"$VENV/bin/pip" install --quiet --upgrade pip
"$VENV/bin/pip" install --quiet -r "$ROOT/tests/clients/requirements.txt"
echo "$VENV/bin/python"
