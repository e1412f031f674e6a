def test_breakpoint():
    answer = 42
    breakpoint()
    answer += 1
    assert answer == 43
