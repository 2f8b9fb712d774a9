from compress.load.text_corpus import calibration_texts, evaluation_texts


def test_calibration_and_evaluation_texts_are_non_empty_prose():
    calib, evaluation = calibration_texts(), evaluation_texts()
    assert len(calib) >= 100 and len(evaluation) >= 100
    for text in (*calib, *evaluation):
        assert text == text.strip() and len(text.split()) >= 6


def test_calibration_and_evaluation_texts_are_disjoint():
    calib, evaluation = set(calibration_texts()), set(evaluation_texts())
    assert calib.isdisjoint(evaluation)
    starts = {t[:60] for t in calib}
    assert not any(t[:60] in starts for t in evaluation)


def test_texts_have_no_duplicates_and_a_stable_order():
    calib, evaluation = calibration_texts(), evaluation_texts()
    assert len(set(calib)) == len(calib)
    assert len(set(evaluation)) == len(evaluation)
    calibration_texts.cache_clear()
    evaluation_texts.cache_clear()
    assert calibration_texts() == calib
    assert evaluation_texts() == evaluation
