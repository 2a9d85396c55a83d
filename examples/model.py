"""Seed example 5: persist the fitted grid search with ``e.log_model``."""

from sklearn import datasets
from sklearn.ensemble import RandomForestClassifier
from sklearn.model_selection import GridSearchCV
from lab.experiment import Experiment

e = Experiment()

@e.start_run
def train():
    iris = datasets.load_iris()
    parameters = {'n_estimators': [10, 50, 100],
                  'max_depth': [2, 4]}
    clf = GridSearchCV(RandomForestClassifier(), parameters)
    clf.fit(iris.data, iris.target)

    e.log_model('GridSearchCV', clf)
