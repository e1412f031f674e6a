def test_b():
    side = "side b"
    breakpoint()
