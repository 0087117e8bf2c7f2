"""history.csv on resume: rows of epochs to redo dropped, torn rows dropped, the rest kept."""

import csv

from mobilenets.training.history import forget_epochs_after

HEADER = "epoch,accuracy,loss\r\n"
ROWS = ["0,0.5,1.2\r\n", "1,0.6,1.0\r\n", "2,0.7,0.9\r\n"]


def rows(path):
    with open(path, newline="") as f:
        return [row["epoch"] for row in csv.DictReader(f)]


def test_rows_of_epochs_to_redo_are_dropped(tmp_path):
    path = tmp_path / "history.csv"
    path.write_bytes((HEADER + "".join(ROWS)).encode())
    forget_epochs_after(path, 2)
    assert path.read_bytes().decode() == HEADER + "".join(ROWS[:2])
    forget_epochs_after(path, 5)
    assert rows(path) == ["0", "1"]


def test_torn_tails_and_second_headers_are_dropped(tmp_path, caplog):
    path = tmp_path / "history.csv"
    damaged = {
        "nul tail": HEADER + ROWS[0] + "\x00" * 40,
        "cut row": HEADER + ROWS[0] + ROWS[1][:5],
        "second header": HEADER + ROWS[0] + HEADER + ROWS[1],
        "nul inside": HEADER + ROWS[0] + "1,0.6\x00\x00\r\n",
    }
    for name, text in damaged.items():
        path.write_bytes(text.encode())
        forget_epochs_after(path, 3)
        kept = path.read_bytes().decode()
        assert kept.startswith(HEADER) and "\x00" not in kept, name
        assert rows(path) == (["0", "1"] if name == "second header" else ["0"]), name
        # A row appended by Keras' CSVLogger then reads back.
        with open(path, "a", newline="") as f:
            f.write(ROWS[2])
        assert rows(path)[-1] == "2", name
    assert "damaged line(s)" in caplog.text


def test_a_file_without_a_readable_header_starts_again(tmp_path, caplog):
    path = tmp_path / "history.csv"
    path.write_bytes(b"\x00" * 100)
    forget_epochs_after(path, 1)
    assert not path.exists()
    assert "no readable header" in caplog.text
