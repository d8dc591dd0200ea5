"""The image rule of the Known and Movies folders ("./A photo of <name>")."""

from __future__ import annotations

from mmtrace.paperworld.rows import folder_image


def test_folder_image_rule(tmp_path):
    images = tmp_path / "data" / "known_images"
    (images / "A photo of Peru").mkdir(parents=True)
    for name in ("a.txt", "c.jpg", "b.PNG"):
        (images / "A photo of Peru" / name).write_bytes(b"x")
    (images / "A photo of Empty").mkdir()
    assert folder_image("./A photo of Peru", images) == ("known_images/A photo of Peru/b.PNG", None)
    assert folder_image("./A photo of Peru", images, data_dir=images) == (
        "A photo of Peru/b.PNG",
        None,
    )
    assert folder_image("./A photo of Empty", images) == (None, "no image in folder")
    assert folder_image("./A photo of Nobody", images) == (None, "image folder missing")
    assert folder_image("./A photo of Nobody", None) == ("A photo of Nobody", None)


def test_image_references_cannot_leave_the_image_folder(tmp_path):
    from mmtrace.paperworld.rows import file_image

    images = tmp_path / "data" / "images"
    images.mkdir(parents=True)
    (tmp_path / "data" / "secret.jpg").write_bytes(b"x")
    (tmp_path / "data" / "A photo of X").mkdir()
    (tmp_path / "data" / "A photo of X" / "a.jpg").write_bytes(b"x")
    leaves = (None, "image path leaves the image folder")
    assert file_image("../secret.jpg", images) == leaves
    assert file_image(str(tmp_path / "data" / "secret.jpg"), images) == leaves
    assert folder_image("./../A photo of X", images) == leaves
