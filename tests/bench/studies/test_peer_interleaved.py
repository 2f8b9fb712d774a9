import json

from click.testing import CliRunner

from bench.studies.peer_interleaved import main as interleaved
from compress.cli.main import main as compress
from compress.load.text_corpus import evaluation_texts


def test_our_int8_file_and_the_peer_are_timed_in_paired_blocks(tiny_bert, tmp_path):
    out = tmp_path / "out"
    result = CliRunner().invoke(compress, [str(tiny_bert), "--out", str(out), "--batch", "1", "--threads", "1", "--quiet", "--seq-len", "32"])
    assert result.exit_code == 0, result.output
    texts = tmp_path / "held_out.txt"
    texts.write_text("\n".join(evaluation_texts()[:8]) + "\n")
    figures = tmp_path / "ab.json"
    assert interleaved([str(out), "--eval", str(texts), "--rounds", "2", "--blocks", "3", "--batches", "4", "--threads", "1", "--json", str(figures)]) == 0
    data = json.loads(figures.read_text())
    assert len(data["peer_over_ours_per_round"]) == 2 and all(r > 0 for r in data["peer_over_ours_per_round"])
    assert set(data["p50_ms_per_round"]) == {"ours", "ort-quantize-dynamic"} and data["isa"]
    low, high = data["peer_over_ours_quartiles"]
    assert low <= data["peer_over_ours_median"] <= high
