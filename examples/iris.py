"""Everything the user guide shows, in one working script.

Grid-search a random forest on iris; log the features, the best parameters,
accuracy and per-class precision, a confusion-matrix artifact and the model.
Run it a few times with different seeds, then `lab ls` to compare:

    python iris.py --seed 1
    lab ls accuracy_score
"""

import argparse
import os
import tempfile

from sklearn import datasets
from sklearn.ensemble import RandomForestClassifier
from sklearn.metrics import accuracy_score, confusion_matrix, precision_score
from sklearn.model_selection import GridSearchCV, train_test_split

from lab.experiment import Experiment

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--seed", type=int, default=42)
args = parser.parse_args()

e = Experiment(name="iris", dataset="sklearn.datasets.load_iris")


@e.start_run
def train():
    iris = datasets.load_iris()
    e.log_features(iris["feature_names"])
    e.log_parameter("seed", args.seed)

    X_train, X_test, y_train, y_test = train_test_split(
        iris.data, iris.target, test_size=0.25, random_state=args.seed)
    grid = GridSearchCV(RandomForestClassifier(random_state=args.seed),
                        {"n_estimators": [10, 50, 100], "max_depth": [2, 4]})
    grid.fit(X_train, y_train)
    best = grid.best_estimator_.get_params()
    e.log_parameter("n_estimators", best["n_estimators"])
    e.log_parameter("max_depth", best["max_depth"])

    y_pred = grid.predict(X_test)
    e.log_metric("accuracy_score", accuracy_score(y_test, y_pred))
    e.log_metric("precision_score", precision_score(y_test, y_pred, average="macro"))
    # One value per class: stored as precision[0], precision[1], precision[2].
    e.log_metric("precision", precision_score(y_test, y_pred, average=None))

    report = os.path.join(tempfile.mkdtemp(), "confusion_matrix.csv")
    with open(report, "w") as f:
        for row in confusion_matrix(y_test, y_pred):
            f.write(",".join(str(v) for v in row) + "\n")
    e.log_artifact("confusion_matrix", report)
    e.log_model("GridSearchCV", grid)
