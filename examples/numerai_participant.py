"""A participant's script in the style of Numerai's example notebooks (hello_numerai,
target_ensemble, feature_neutralization): numerapi and LightGBM, run unchanged against a
crowdquant server but for the URL line.

Set NUMERAI_PUBLIC_ID, NUMERAI_SECRET_KEY and NUMERAI_MODEL_ID, then run
`python numerai_participant.py`.
"""

import json
import os

import lightgbm as lgb
import numerapi.base_api
import pandas as pd
from numerai_tools.scoring import correlation_contribution, neutralize, numerai_corr
from numerapi import NumerAPI

numerapi.base_api.API_TOURNAMENT_URL = "https://crowdquant.example.org/graphql"  # your server

napi = NumerAPI(os.environ["NUMERAI_PUBLIC_ID"], os.environ["NUMERAI_SECRET_KEY"])
MODEL_ID = os.environ["NUMERAI_MODEL_ID"]

# list the datasets and available versions
all_datasets = napi.list_datasets()
dataset_versions = list(set(d.split("/")[0] for d in all_datasets))
print("Available versions:\n", dataset_versions)
DATA_VERSION = "v5.3"
current_version_files = [f for f in all_datasets if f.startswith(DATA_VERSION)]
print("Available", DATA_VERSION, "files:\n", current_version_files)

# feature sets and targets
napi.download_dataset(f"{DATA_VERSION}/features.json")
with open(f"{DATA_VERSION}/features.json") as file:
    feature_metadata = json.load(file)
feature_sets = feature_metadata["feature_sets"]
feature_set = feature_sets["small"]
medium_features = feature_sets["medium"]
targets = feature_metadata["targets"]
MAIN_TARGET = "target_ender_20"
AUX_TARGET = "target_victor_20"

# train on every 4th era, as the notebooks do to save memory
napi.download_dataset(f"{DATA_VERSION}/train.parquet")
train = pd.read_parquet(f"{DATA_VERSION}/train.parquet", columns=["era", *feature_set, *targets])
assert train["target"].equals(train[MAIN_TARGET])
train = train[train["era"].isin(train["era"].unique()[::4])]

models = {}
for target in [MAIN_TARGET, AUX_TARGET]:
    model = lgb.LGBMRegressor(
        n_estimators=30,
        learning_rate=0.05,
        max_depth=5,
        num_leaves=2**5 - 1,
        colsample_bytree=0.5,
        n_jobs=1,
        verbose=-1,
    )
    model.fit(train[feature_set], train[target])
    models[target] = model

# validation, embargoed behind the last training era
napi.download_dataset(f"{DATA_VERSION}/validation.parquet")
validation = pd.read_parquet(
    f"{DATA_VERSION}/validation.parquet",
    columns=["era", "data_type", "target", *dict.fromkeys(feature_set + medium_features)],
)
validation = validation[validation["data_type"] == "validation"]
last_train_era = int(train["era"].unique()[-1])
eras_to_embargo = [str(era).zfill(4) for era in [last_train_era + i for i in range(4)]]
validation = validation[~validation["era"].isin(eras_to_embargo)]


def predict(features: pd.DataFrame) -> pd.Series:
    """The ensemble: each target's model ranked per era, averaged, neutralised against the
    medium features, ranked again."""
    frame = features.copy()
    names = []
    for target, model in models.items():
        frame[f"prediction_{target}"] = model.predict(frame[feature_set])
        names.append(f"prediction_{target}")
    frame["ensemble"] = frame.groupby("era")[names].rank(pct=True).mean(axis=1)
    neutral = frame.groupby("era", group_keys=False).apply(
        lambda era: neutralize(era[["ensemble"]], era[medium_features], proportion=0.5)
    )
    return neutral["ensemble"].groupby(frame["era"]).rank(pct=True)


validation["prediction"] = predict(validation)

# the meta model and the benchmark models, joined on the validation ids
napi.download_dataset(f"{DATA_VERSION}/meta_model.parquet", round_num=842)
validation["meta_model"] = pd.read_parquet(f"{DATA_VERSION}/meta_model.parquet")[
    "numerai_meta_model"
]
napi.download_dataset(f"{DATA_VERSION}/validation_benchmark_models.parquet")
benchmark_models = pd.read_parquet(f"{DATA_VERSION}/validation_benchmark_models.parquet")
validation["v53_lgbm_ender20"] = benchmark_models["v53_lgbm_ender20"]

per_era_corr = validation.groupby("era").apply(
    lambda x: numerai_corr(x[["prediction"]].dropna(), x["target"].dropna())
)
per_era_mmc = (
    validation.dropna()
    .groupby("era")
    .apply(lambda x: correlation_contribution(x[["prediction"]], x["meta_model"], x["target"]))
)
per_era_bmc = (
    validation.dropna()
    .groupby("era")
    .apply(
        lambda x: correlation_contribution(x[["prediction"]], x["v53_lgbm_ender20"], x["target"])
    )
)
corr_mean, mmc_mean = per_era_corr["prediction"].mean(), per_era_mmc["prediction"].mean()
print(f"CORR {corr_mean:.4f}  MMC {mmc_mean:.4f}  BMC {per_era_bmc['prediction'].mean():.4f}")

# predict the live era and submit
napi.download_dataset(f"{DATA_VERSION}/live.parquet")
live_features = pd.read_parquet(
    f"{DATA_VERSION}/live.parquet", columns=["era", *dict.fromkeys(feature_set + medium_features)]
)
napi.download_dataset(f"{DATA_VERSION}/live_benchmark_models.parquet")
live_benchmark_models = pd.read_parquet(f"{DATA_VERSION}/live_benchmark_models.parquet")
assert live_benchmark_models.index.equals(live_features.index)
submission = predict(live_features).to_frame("prediction")
submission.to_csv("predictions.csv")
submission_id = napi.upload_predictions("predictions.csv", model_id=MODEL_ID)
print("submitted", submission_id)
