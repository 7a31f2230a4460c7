"""MovieLens loaders: hand-made GroupLens fixtures with bad rows, and recbole's real ML-100k."""

import importlib.util
import logging

import numpy as np
import pytest

from elc.projects.movielens.dataset import Movie, User, load_movielens, load_recbole, split_title_year

ZERO = dict(malformed_rating=0, malformed_movie=0, malformed_user=0, out_of_scale_rating=0,
            unknown_user=0, unknown_item=0, duplicate_rating=0, no_genres=0)


def write(directory, name, text, encoding="utf-8"):
    (directory / name).write_text(text, encoding=encoding)


def assert_ratings(ratings, expected):
    """``expected`` is a list of (user, item, rating, timestamp) in file order."""
    users, items, values, times = (list(column) for column in zip(*expected))
    np.testing.assert_array_equal(ratings.user_ids, np.array(users, np.int64))
    np.testing.assert_array_equal(ratings.item_ids, np.array(items, np.int64))
    np.testing.assert_array_equal(ratings.ratings, np.array(values, np.float32))
    np.testing.assert_array_equal(ratings.timestamps, np.array(times, np.int64))
    assert (ratings.user_ids.dtype, ratings.item_ids.dtype, ratings.ratings.dtype,
            ratings.timestamps.dtype) == (np.int64, np.int64, np.float32, np.int64)


# Genre flag columns of u.item: unknown, Action, Adventure, Animation, Children's, Comedy,
# Crime, Documentary, Drama, Fantasy, Film-Noir, Horror, Musical, Mystery, Romance, Sci-Fi,
# Thriller, War, Western.
U_ITEM = (
    "1|Toy Story (1995)|01-Jan-1995||http://a|0|0|0|1|1|1|0|0|0|0|0|0|0|0|0|0|0|0|0\n"
    "2|GoldenEye (1995)|01-Jan-1995||http://b|0|1|1|0|0|0|0|0|0|0|0|0|0|0|0|0|1|0|0\n"
    "3|Nameless|01-Jan-1994||http://c|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0\n"
    "4|Café (a.k.a. Other) (1996)|01-Jan-1996||http://d|0|0|0|0|0|0|0|0|1|0|0|0|0|0|0|0|0|0|0\n"
    "5|Too short|01-Jan-1996||http://e|0|1\n"
)
U_USER = "1|24|M|technician|85711\n2|53|F|other|94043\n3|x|M|writer|32067\n"
U_DATA = (
    "1\t1\t5\t100\n"    # 1: superseded by line 4
    "1\t2\t3\t200\n"    # 2: kept
    "2\t1\t4\t300\n"    # 3: kept
    "1\t1\t2\t150\n"    # 4: kept, latest (1, 1)
    "2\t3\tx\t400\n"    # 5: malformed rating
    "2\t3\t4\n"         # 6: malformed, 3 fields
    "9\t1\t3\t500\n"    # 7: unknown user
    "3\t1\t3\t500\n"    # 8: unknown user (its row in u.user is malformed)
    "2\t99\t3\t500\n"   # 9: unknown item
    "2\t4\t4.5\t600\n"  # 10: kept
    "1\t2\t1\t50\n"     # 11: older than line 2, dropped
    "9\t99\t1\t50\n"    # 12: unknown user and item, counted once as unknown user
)


@pytest.fixture
def ml100k(tmp_path):
    write(tmp_path, "u.item", U_ITEM, "latin-1")
    write(tmp_path, "u.user", U_USER, "latin-1")
    write(tmp_path, "u.data", U_DATA, "latin-1")
    return tmp_path


def test_grouplens_100k(ml100k):
    data = load_movielens("grouplens", str(ml100k))
    assert data.source == "grouplens:ml-100k"
    assert_ratings(data.ratings, [(1, 2, 3, 200), (2, 1, 4, 300), (1, 1, 2, 150),
                                  (2, 4, 4.5, 600)])
    assert data.movies.by_id == {
        1: Movie("Toy Story", 1995, ("Animation", "Children's", "Comedy")),
        2: Movie("GoldenEye", 1995, ("Action", "Adventure", "Thriller")),
        3: Movie("Nameless", 1994, ()),
        4: Movie("Café (a.k.a. Other)", 1996, ("Drama",)),
    }
    assert data.users.by_id == {1: User(24, "M", "technician"), 2: User(53, "F", "other")}
    assert data.report == dict(ZERO, malformed_rating=2, malformed_movie=1, malformed_user=1,
                               unknown_user=3, unknown_item=1, duplicate_rating=2, no_genres=1)
    assert data.tag_genome is None
    assert data.summary() == (
        "MovieLens from grouplens:ml-100k: 2 users, 4 movies, 4 ratings; skipped/flagged: "
        "malformed_rating 2, malformed_movie 1, malformed_user 1, out_of_scale_rating 0, "
        "unknown_user 3, unknown_item 1, duplicate_rating 2, no_genres 1")


def test_bad_rows_are_warned_with_file_and_line(ml100k, caplog):
    with caplog.at_level(logging.WARNING):
        load_movielens("grouplens", str(ml100k))
    text = caplog.text
    assert f"{ml100k / 'u.data'}: malformed_rating; first at line 5" in text
    assert f"{ml100k / 'u.data'}: duplicate_rating; first at line 1" in text
    assert f"{ml100k / 'u.item'}: no_genres; first at line 3" in text


def test_ratings_outside_the_scale_are_counted_and_skipped(ml100k, caplog):
    # ML-100k rates 1 to 5: 0, 40 and 1e12 (which makes ALS overflow) are out of scale,
    # and so counted (also a row with an unknown user) instead of reaching ALS.
    write(ml100k, "u.data", "1\t1\t5\t100\n1\t2\t0\t200\n2\t1\t40\t300\n"
                            "2\t2\t1e12\t400\n9\t2\t6\t500\n2\t4\t1\t600\n", "latin-1")
    with caplog.at_level(logging.WARNING):
        data = load_movielens("grouplens", str(ml100k))
    assert_ratings(data.ratings, [(1, 1, 5, 100), (2, 4, 1, 600)])
    assert data.report == dict(ZERO, malformed_movie=1, malformed_user=1, out_of_scale_rating=4,
                               no_genres=1)
    assert "out_of_scale_rating 4" in data.summary()
    assert (f"{ml100k / 'u.data'}: out_of_scale_rating; first at line 2: rating 0 is outside "
            "the scale 1 to 5") in caplog.text


def test_half_star_datasets_keep_half_a_star(ml_csv):
    write(ml_csv, "ratings.csv", "userId,movieId,rating,timestamp\n1,1,0.5,1\n1,2,0.0,2\n"
                                 "2,1,5.5,3\n")
    data = load_movielens("grouplens", str(ml_csv))
    assert_ratings(data.ratings, [(1, 1, 0.5, 1)])
    assert data.report["out_of_scale_rating"] == 2


def test_a_csv_file_not_in_utf8_is_named_with_its_byte_offset(ml_csv):
    # The csv datasets are UTF-8 (ML-100k's latin-1 u.item is read as latin-1, above).
    write(ml_csv, "movies.csv", "movieId,title,genres\n1,Café (1995),Drama\n", "latin-1")
    with pytest.raises(ValueError, match=r"movies.csv: not UTF-8 at byte 26 \(line 2: "):
        load_movielens("grouplens", str(ml_csv))


def test_missing_required_file_names_it(ml100k):
    (ml100k / "u.item").unlink()
    with pytest.raises(FileNotFoundError, match="u.item is missing"):
        load_movielens("grouplens", str(ml100k))


def test_unrecognised_directory(tmp_path):
    with pytest.raises(FileNotFoundError, match="none of u.data"):
        load_movielens("grouplens", str(tmp_path))


ML1M_USERS = "1::F::1::10::48067\n2::M::56::16::70072\n3::M::25::99::55117\n4::M::18::0::10001\n"
ML1M_MOVIES = (
    "1::Toy Story (1995)::Animation|Children's|Comedy\n"
    "2::City of Lost Children, The (Cité des enfants perdus, La) (1995)::Adventure|Sci-Fi\n"
    "3::Shawshank Redemption, The (1994)::\n"
    "4::Broken::Drama::Extra\n"
)
ML1M_RATINGS = (
    "1::1::5::978300760\n"
    "1::2::3::978302109\n"
    "2::1::4::978301968\n"
    "2::1::2::978301000\n"  # older duplicate of line 3
    "1::3::x::978300000\n"  # malformed
    "2::4::3::978300000\n"  # movie 4 is malformed, so unknown item
    "3::1::3::978300000\n"  # user 3 has a bad occupation code, so unknown user
    "2::3::1::978300001\n"
)


def test_grouplens_1m(tmp_path):
    write(tmp_path, "users.dat", ML1M_USERS, "latin-1")
    write(tmp_path, "movies.dat", ML1M_MOVIES, "latin-1")
    write(tmp_path, "ratings.dat", ML1M_RATINGS, "latin-1")
    data = load_movielens("grouplens", str(tmp_path))
    assert data.source == "grouplens:ml-1m"
    assert_ratings(data.ratings, [(1, 1, 5, 978300760), (1, 2, 3, 978302109),
                                  (2, 1, 4, 978301968), (2, 3, 1, 978300001)])
    assert data.movies.by_id == {
        1: Movie("Toy Story", 1995, ("Animation", "Children's", "Comedy")),
        2: Movie("City of Lost Children, The (Cité des enfants perdus, La)", 1995,
                 ("Adventure", "Sci-Fi")),
        3: Movie("Shawshank Redemption, The", 1994, ()),
    }
    # Occupation codes 10, 16 and 0 of the ML-1m README.
    assert data.users.by_id == {1: User(1, "F", "K-12 student"), 2: User(56, "M", "self-employed"),
                                4: User(18, "M", "other")}
    assert data.report == dict(ZERO, malformed_rating=1, malformed_movie=1, malformed_user=1,
                               unknown_user=1, unknown_item=1, duplicate_rating=1, no_genres=1)


ML_CSV_MOVIES = (
    "movieId,title,genres\n"
    "1,Toy Story (1995),Adventure|Animation|Children|Comedy|Fantasy\n"
    '2,"American President, The (1995)",Comedy|Drama|Romance\n'
    '3,"Babylon 5 (1994-1998) ",(no genres listed)\n'
    "4,Untitled,Drama\n"
    "5,Extra field,Drama,oops\n"
)
ML_CSV_RATINGS = (
    "userId,movieId,rating,timestamp\n"
    "1,1,4.0,964982703\n"    # superseded by line 5
    "1,2,4.5,964981247\n"
    "2,1,3.5,1445714835\n"
    "1,1,2.0,964982800\n"
    "2,x,3.0,1\n"            # malformed
    "2,9,3.0,1\n"            # unknown item
    "2,5,3.0,1\n"            # movie 5 is malformed, so unknown item
    "2,2,3.0,inf\n"          # malformed: infinite timestamp
)


@pytest.fixture
def ml_csv(tmp_path):
    write(tmp_path, "movies.csv", ML_CSV_MOVIES)
    write(tmp_path, "ratings.csv", ML_CSV_RATINGS)
    return tmp_path


def test_grouplens_csv(ml_csv):
    data = load_movielens("grouplens", str(ml_csv))
    assert data.source == "grouplens:ml-csv"
    assert_ratings(data.ratings, [(1, 2, 4.5, 964981247), (2, 1, 3.5, 1445714835),
                                  (1, 1, 2.0, 964982800)])
    assert data.movies.by_id == {
        1: Movie("Toy Story", 1995, ("Adventure", "Animation", "Children", "Comedy", "Fantasy")),
        2: Movie("American President, The", 1995, ("Comedy", "Drama", "Romance")),
        3: Movie("Babylon 5", 1994, ()),
        4: Movie("Untitled", None, ("Drama",)),
    }
    assert len(data.users) == 0
    assert data.report == dict(ZERO, malformed_rating=2, malformed_movie=1, unknown_item=2,
                               duplicate_rating=1, no_genres=1)
    assert data.tag_genome is None


def test_grouplens_csv_tag_genome(ml_csv):
    write(ml_csv, "genome-tags.csv", "tagId,tag\n2,action\n1,007\n")
    write(ml_csv, "genome-scores.csv", "movieId,tagId,relevance\n2,1,0.25\n1,1,0.5\n1,2,0.75\n")
    genome = load_movielens("grouplens", str(ml_csv)).tag_genome
    np.testing.assert_array_equal(genome.item_ids, np.array([1, 2], np.int64))
    assert genome.tags == ("007", "action")
    np.testing.assert_array_equal(genome.relevance,
                                  np.array([[0.5, 0.75], [0.25, np.nan]], np.float32))
    assert genome.relevance.dtype == np.float32


def test_csv_header_without_needed_column(ml_csv):
    write(ml_csv, "ratings.csv", "userId,itemId,rating,timestamp\n1,1,4.0,1\n")
    with pytest.raises(ValueError, match=r"ratings.csv line 1: .*lacks columns \['movieId'\]"):
        load_movielens("grouplens", str(ml_csv))


def test_recbole_header_without_needed_column(tmp_path):
    write(tmp_path, "ml-100k.user", "user_id:token\tage:token\tgender:token\toccupation:token\n")
    write(tmp_path, "ml-100k.item", "item_id:token\tmovie_title:token_seq\tclass:token_seq\n")
    write(tmp_path, "ml-100k.inter", "user_id:token\titem_id:token\trating:float\n")
    with pytest.raises(ValueError,
                       match=r"ml-100k.item line 1: .*lacks columns \['release_year'\]"):
        load_recbole(str(tmp_path))


@pytest.mark.parametrize("title, expected", [
    ("Toy Story (1995)", ("Toy Story", 1995)),
    ("Shanghai Triad (Yao a yao yao dao waipo qiao) (1995)",
     ("Shanghai Triad (Yao a yao yao dao waipo qiao)", 1995)),
    ("Title (a.k.a. X) (1995)", ("Title (a.k.a. X)", 1995)),
    ("Babylon 5 (1994-1998) ", ("Babylon 5", 1994)),
    ("unknown", ("unknown", None)),
    ("1984", ("1984", None)),
])
def test_split_title_year(title, expected):
    assert split_title_year(title) == expected


def test_unknown_source():
    with pytest.raises(ValueError, match="'kaggle' is not one of"):
        load_movielens("kaggle")


@pytest.mark.slow
def test_tfds_not_prepared_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError,
                       match=f"movielens/100k-ratings is not available in data_dir '{tmp_path}'"):
        load_movielens("tfds", str(tmp_path))


def test_recbole_ml100k():
    if importlib.util.find_spec("recbole") is None:
        pytest.skip("recbole is not installed (pip install --no-deps recbole==1.2.1)")
    data = load_movielens()
    assert data.source == "recbole"
    # Published MovieLens-100k counts, u.user's first line and u.data's first line.
    assert (len(data.users), len(data.movies), len(data.ratings)) == (943, 1682, 100000)
    assert data.users[1] == User(24, "M", "technician")
    toy_story = data.movies[1]
    assert (toy_story.title, toy_story.year) == ("Toy Story", 1995)
    assert {"Animation", "Children's", "Comedy"} <= set(toy_story.genres)
    assert (data.ratings.user_ids[0], data.ratings.item_ids[0], data.ratings.ratings[0],
            data.ratings.timestamps[0]) == (196, 242, 3.0, 881250949)
    assert set(np.unique(data.ratings.ratings)) == {1.0, 2.0, 3.0, 4.0, 5.0}
    assert data.report == ZERO
