"""Source-wise splits: a package's channel variants are one source (data v3's Asterisk sets)."""

from deepscreen_train.common import DEV_REAL, real_split, source_family


def test_channel_variants_follow_their_source():
    for variant in ("wav", "gsm", "g722"):
        assert real_split("speech", f"asterisk-core-sounds-ru-{variant}") == "dev"
        assert real_split("speech", f"asterisk-core-sounds-en-{variant}") == "train"
        assert real_split("music", f"asterisk-moh-opsound-{variant}") == "dev"


def test_other_packages_keep_their_names():
    assert source_family("fillets-ng-data-nl") == "fillets-ng-data-nl"
    assert real_split("speech", "fillets-ng-data-nl") == "dev"
    assert real_split("speech", "fillets-ng-data-cs") == "train"
    # Every named dev source still names something real after the suffix rule.
    for kind, names in DEV_REAL.items():
        assert all(source_family(n) == n for n in names), kind
