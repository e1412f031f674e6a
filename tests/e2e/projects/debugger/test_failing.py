def test_assertion():
    word = "hello"
    print("printed before the failure")
    assert word == "world"
