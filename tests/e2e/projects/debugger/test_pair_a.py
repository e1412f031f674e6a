def test_a():
    side = "side a"
    breakpoint()
