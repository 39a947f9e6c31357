"""Bot participants: scripts that play a tournament through its public API, as a person would.

A bot holds an API key and nothing else. It downloads the data and uploads predictions with
numerapi, stakes with numerapi, and reads the round, creates its models and sets where their
payouts go through the REST API; it trains its models on its own. The demo, the simulator and
the end-to-end tests all run these bots.

Archetypes (`ARCHETYPES`):

- example: the dataset's example-model recipe (`data.example_model`), one model;
- linear: a ridge regression on every feature, one model;
- boosting: gradient boosting on a third of the features, one model;
- spammer: many models, each uploading uniform random predictions, each staked;
- copier: submits the crowd's consensus, the recipe most of the stake runs variants of (in
  Numerai's crowd, the example predictions). Here that is the ridge on every feature: the
  analysts, sybils and latecomers are ridges too. Its uploads equal the linear bot's, row
  for row;
- sybil: the linear recipe behind k models, each with a little noise added, one stake split
  equally between them (the linear bot, staking the whole on one model, is the control);
- latecomer: stakes, but uploads each round only once it has closed;
- analyst: a ridge regression on a share of the features with some noise, both drawn from
  its seed: bots of varied skill.

Under classic rules a bot stakes once and its stake then grows and shrinks with payouts and
burns. Where stakes are placed per round (`RoundStaking`), it stakes on every round it plays,
so that its stake compounds the same way. A bot with a fixed stake (`Bot.fixed_stake`,
Numerai's fixed mode) takes its payouts instead: under classic rules they go to its wallet
and each round it plays it tops its stake back up after burns; per round, it stakes the same
amount every round.

Populations of them are in `crowdquant.simulate.populations`.
"""

from __future__ import annotations

import hashlib
import io
import tempfile
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_DOWN, Decimal
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import numerapi
import numerapi.base_api
import numpy as np
import numpy.typing as npt
import pandas as pd

from crowdquant.data.config import ExampleModelConfig
from crowdquant.data.example_model import train_example_model
from crowdquant.tournament.scheduler import RoundClosed, RoundOpened

if TYPE_CHECKING:
    from sklearn.ensemble import HistGradientBoostingRegressor

FloatArray = npt.NDArray[np.float64]
TARGET = "target"


DIGEST = "crowdquant_sha256"
"""Where a frame `ParsedFiles` read keeps the SHA-256 of the file's bytes (`DataFrame.attrs`,
carried by copies)."""


class ParsedFiles:
    """Parquet files parsed once for the bots of one run: a file is known by its bytes
    (their SHA-256), so a bot that downloaded the very bytes another bot parsed gets a copy of
    that frame; different bytes (another round's file, a changed one) are parsed afresh. Each
    bot still downloads its own file; only the decoding is shared. Keeps the `size` files
    used last. Each frame carries its file's digest (`DIGEST`)."""

    def __init__(self, size: int = 4) -> None:
        self.size = size
        self._frames: OrderedDict[bytes, pd.DataFrame] = OrderedDict()

    def read(self, path: Path) -> pd.DataFrame:
        data = path.read_bytes()
        key = hashlib.sha256(data).digest()
        frame = self._frames.get(key)
        if frame is None:
            frame = pd.read_parquet(io.BytesIO(data))
            frame.attrs[DIGEST] = key
            self._frames[key] = frame
            while len(self._frames) > self.size:
                self._frames.popitem(last=False)
        else:
            self._frames.move_to_end(key)
        return frame.copy()

    def __len__(self) -> int:
        return len(self._frames)


@dataclass(frozen=True)
class Wealth:
    """A bot's NMR as its API shows it (`Participant.wealth`)."""

    available: Decimal  # in the wallet
    staked: Decimal  # staked by its models, locked until their rounds resolve
    on_round: frozenset[str]  # its models already staking on the round asked about


class Participant:
    """One participant's view of a tournament server, through its public API only."""

    def __init__(
        self,
        url: str,
        public_id: str,
        secret: str,
        tournament: int,
        transport: httpx.BaseTransport | None = None,
        parsed: ParsedFiles | None = None,
    ) -> None:
        """`transport`: how the REST client reaches `url` (by default over the network; numerapi
        follows `simulate.in_process.requests_through` in process). `parsed`: the downloaded
        files' frames shared with the other bots of a run (by default each file parsed here)."""
        numerapi.base_api.API_TOURNAMENT_URL = url.rstrip("/")  # numerapi's one setting
        self.napi = numerapi.NumerAPI(  # type: ignore[no-untyped-call]
            public_id, secret, verbosity="warning", show_progress_bars=False
        )
        self.napi.tournament_id = tournament
        self.tournament = tournament
        self.parsed = parsed
        self.rest = httpx.Client(
            base_url=f"{url.rstrip('/')}/api/v1",
            headers={"Authorization": f"Token {public_id}${secret}"},
            timeout=120,
            transport=transport,
        )

    def models(self, names: Sequence[str]) -> dict[str, str]:
        """The ids of this participant's models called `names`, creating the missing ones."""
        found = {name: str(id_) for name, id_ in self.napi.get_models(self.tournament).items()}
        for name in names:
            if name not in found:
                answer = self.rest.post(
                    "/models", json={"tournament": self.tournament, "name": name}
                )
                answer.raise_for_status()
                found[name] = str(answer.json()["id"])
        return {name: found[name] for name in names}

    def round_now(self) -> tuple[int | None, bool]:
        """The newest round's number (None before the first) and whether it takes
        submissions now, by the server's clock."""
        answer = self.rest.get(f"/tournaments/{self.tournament}/rounds", params={"limit": 1})
        answer.raise_for_status()
        rounds = answer.json()
        return (
            (None, False) if not rounds else (int(rounds[0]["number"]), bool(rounds[0]["is_open"]))
        )

    def download(
        self, filename: str, folder: Path, round_number: int | None = None
    ) -> pd.DataFrame:
        path = folder / (filename if round_number is None else f"{round_number}_{filename}")
        self.napi.download_dataset(filename, str(path), round_num=round_number)
        try:
            return pd.read_parquet(path) if self.parsed is None else self.parsed.read(path)
        finally:
            path.unlink()  # read once: a long demo keeps no pile of files

    def upload(self, model_id: str, ids: pd.Index, values: FloatArray, folder: Path) -> None:
        """Upload predictions as a CSV file written in `folder` (`predictions_csv`)."""
        path = folder / "predictions.csv"
        path.write_bytes(predictions_csv(ids, values))
        try:
            self.napi.upload_predictions(str(path), model_id=model_id)
        finally:
            path.unlink()

    def wealth(self, model_ids: Sequence[str], round_number: int) -> Wealth:
        """The NMR in the wallet, the NMR staked by `model_ids` (locked until their rounds
        resolve), and which of them already stake on round `round_number`."""
        available = Decimal(self.napi.get_account()["availableNmr"])
        staked, on_round = Decimal(0), set()
        for model_id in model_ids:
            answer = self.rest.get(f"/models/{model_id}/stake")
            answer.raise_for_status()
            stake = answer.json()
            staked += Decimal(stake["staked"])
            if any(row["round"] == round_number for row in stake["at_risk"]):
                on_round.add(model_id)
        return Wealth(available, staked, frozenset(on_round))

    def stake_on_round(self, model_id: str, amount: Decimal) -> None:
        """Stake `amount` NMR more on the open round (a tournament that stakes per round)."""
        self.napi.stake_increase(str(amount), model_id)

    def pay_to_wallet(self, model_id: str) -> None:
        """Send the model's future payouts to the wallet rather than into its stake."""
        answer = self.rest.put(f"/models/{model_id}/payout-mode", json={"mode": "wallet"})
        answer.raise_for_status()

    def stake_to(self, model_name: str, model_id: str, amount: Decimal) -> None:
        """Raise the model's stake to `amount` NMR as far as the wallet allows (never lowers
        it)."""
        held = self.napi.stake_get(model_name) or Decimal(0)
        if held < amount:
            more = min(amount - held, Decimal(self.napi.get_account()["availableNmr"]))
            if more > 0:
                self.napi.stake_increase(str(more), model_id)

    def close(self) -> None:
        self.rest.close()


def predictions_csv(ids: pd.Index, values: FloatArray) -> bytes:
    """`id,prediction` rows as CSV, each value in the fewest digits that read back to the
    same float: what `DataFrame.to_csv` writes, at a tenth of its cost (Arrow's writer)."""
    import pyarrow as pa
    import pyarrow.csv

    table = pa.table({"id": pa.array(ids.astype(str), pa.string()), "prediction": values})
    rows = io.BytesIO()
    pyarrow.csv.write_csv(
        table, rows, pyarrow.csv.WriteOptions(include_header=False, quoting_style="none")
    )
    return b"id,prediction\n" + rows.getvalue()


# --- strategies: a bot's models, fitted on the training data ---------------------------------

Predict = Callable[[pd.DataFrame], dict[str, FloatArray]]
Strategy = Callable[[pd.DataFrame, tuple[str, ...], int, "ExampleFits"], Predict]
"""(training data, model names, seed, the run's shared example fits) → what predicts every
model's values for a live file."""


def ranked(values: FloatArray) -> FloatArray:
    """Predictions as ranks in (0, 1): what the tournament scores is their order."""
    ranks = pd.Series(values).rank(method="average", pct=True).to_numpy(np.float64)
    return np.asarray(ranks - 0.5 / len(values), dtype=np.float64)


def feature_names(frame: pd.DataFrame) -> list[str]:
    return [column for column in frame.columns if column.startswith("feature")]


def _each(names: tuple[str, ...], predict: Callable[[pd.DataFrame], FloatArray]) -> Predict:
    return lambda live: {name: predict(live) for name in names}


class ExampleFits:
    """The example recipe fitted on a training file, shared by the bots that fit it on the
    very same bytes (known by the frame's `DIGEST`): the fit is deterministic (a fixed
    random state), so each such bot would fit the same model. A frame without a digest is
    fitted afresh. Keeps the `size` fits made last, and their ranks for the `size` live
    files (known by their `DIGEST` too) predicted last: the bots sharing a fit share its
    predictions of the very same live bytes (each gets its own copy)."""

    def __init__(self, size: int = 2) -> None:
        self.size = size
        self._fits: OrderedDict[bytes, HistGradientBoostingRegressor] = OrderedDict()
        self._ranks: OrderedDict[bytes, FloatArray] = OrderedDict()

    def fitted(self, train: pd.DataFrame, features: list[str]) -> HistGradientBoostingRegressor:
        key = self._fit_key(train, features)
        if key is None:
            return train_example_model(train, features, ExampleModelConfig())
        model = self._fits.get(key)
        if model is None:
            model = train_example_model(train, features, ExampleModelConfig())
            self._fits[key] = model
            while len(self._fits) > self.size:
                self._fits.popitem(last=False)
        else:
            self._fits.move_to_end(key)
        return model

    def predictor(
        self, train: pd.DataFrame, features: list[str]
    ) -> Callable[[pd.DataFrame], FloatArray]:
        """What ranks a live file's rows with the recipe fitted on `train` (`fitted`)."""
        model, fit = self.fitted(train, features), self._fit_key(train, features)

        def predict(live: pd.DataFrame) -> FloatArray:
            digest = live.attrs.get(DIGEST)
            if fit is None or not isinstance(digest, bytes):
                return ranked(model.predict(live[features].to_numpy(np.float32)))
            key = fit + digest
            found = self._ranks.get(key)
            if found is None:
                found = ranked(model.predict(live[features].to_numpy(np.float32)))
                self._ranks[key] = found
                while len(self._ranks) > self.size:
                    self._ranks.popitem(last=False)
            else:
                self._ranks.move_to_end(key)
            return found.copy()

        return predict

    @staticmethod
    def _fit_key(train: pd.DataFrame, features: list[str]) -> bytes | None:
        digest = train.attrs.get(DIGEST)
        if not isinstance(digest, bytes):
            return None
        return hashlib.sha256(digest + "\0".join(features).encode()).digest()


def example_model(
    train: pd.DataFrame, names: tuple[str, ...], seed: int, fits: ExampleFits
) -> Predict:
    return _each(names, fits.predictor(train, feature_names(train)))


def _ridge(train: pd.DataFrame) -> Callable[[pd.DataFrame], FloatArray]:
    from sklearn.linear_model import Ridge  # slow to import: on use

    features = feature_names(train)
    model = Ridge(alpha=len(train) / 10).fit(
        train[features].to_numpy(np.float64), train[TARGET].to_numpy(np.float64)
    )
    return lambda live: ranked(model.predict(live[features].to_numpy(np.float64)))


def linear_model(
    train: pd.DataFrame, names: tuple[str, ...], seed: int, fits: ExampleFits
) -> Predict:
    return _each(names, _ridge(train))


def boosting_model(
    train: pd.DataFrame, names: tuple[str, ...], seed: int, fits: ExampleFits
) -> Predict:
    from sklearn.ensemble import HistGradientBoostingRegressor

    features = feature_names(train)
    subset = sorted(np.random.default_rng(seed).choice(features, len(features) // 3 or 1, False))
    model = HistGradientBoostingRegressor(
        max_iter=40, max_depth=3, learning_rate=0.05, early_stopping=False, random_state=seed
    ).fit(train[subset].to_numpy(np.float32), train[TARGET].to_numpy(np.float32))
    return _each(names, lambda live: ranked(model.predict(live[subset].to_numpy(np.float32))))


def random_predictions(
    train: pd.DataFrame, names: tuple[str, ...], seed: int, fits: ExampleFits
) -> Predict:
    rng = np.random.default_rng(seed)
    return lambda live: {name: rng.uniform(size=len(live)) for name in names}


def analyst_model(
    train: pd.DataFrame, names: tuple[str, ...], seed: int, fits: ExampleFits
) -> Predict:
    """A ridge regression on a seeded share (20-90 %) of the features, its ranks blurred by
    seeded noise (sd 0-0.3): each seed a different skill."""
    from sklearn.linear_model import Ridge

    rng = np.random.default_rng(seed)
    features = feature_names(train)
    share, noise = rng.uniform(0.2, 0.9), rng.uniform(0.0, 0.3)
    subset = sorted(rng.choice(features, max(1, round(len(features) * share)), replace=False))
    model = Ridge(alpha=len(train) / 10).fit(
        train[subset].to_numpy(np.float64), train[TARGET].to_numpy(np.float64)
    )

    def predict(live: pd.DataFrame) -> FloatArray:
        base = ranked(model.predict(live[subset].to_numpy(np.float64)))
        return ranked(base + rng.normal(0, noise, len(base)))

    return _each(names, predict)


SYBIL_NOISE = 0.01
"""The noise a sybil adds to each copy of its ranks, in the (0, 1) range's units."""


def noisy_copies(
    train: pd.DataFrame, names: tuple[str, ...], seed: int, fits: ExampleFits
) -> Predict:
    predict, rng = _ridge(train), np.random.default_rng(seed)

    def copies(live: pd.DataFrame) -> dict[str, FloatArray]:
        base = predict(live)
        return {name: np.clip(base + rng.normal(0, SYBIL_NOISE, len(base)), 0, 1) for name in names}

    return copies


# --- archetypes and bots ----------------------------------------------------------------------


@dataclass(frozen=True)
class Archetype:
    name: str
    strategy: Strategy
    models: int  # models per bot
    split_stake: bool = False  # the bot's stake is shared by its models rather than each's
    late: bool = False  # uploads once the round has closed


ARCHETYPES = {
    archetype.name: archetype
    for archetype in (
        Archetype("example", example_model, 1),
        Archetype("linear", linear_model, 1),
        Archetype("boosting", boosting_model, 1),
        Archetype("spammer", random_predictions, 8),
        Archetype("copier", linear_model, 1),
        Archetype("sybil", noisy_copies, 5, split_stake=True),
        Archetype("latecomer", linear_model, 1, late=True),
        Archetype("analyst", analyst_model, 1),
    )
}


@dataclass(frozen=True)
class RoundStaking:
    """How bots stake in a tournament that stakes per round. A classic stake is at risk in
    every round open at once and grows or shrinks with each payout; here a bot's stake value
    is its stake at the start plus its net payouts so far (its wealth less its grant), or its
    stake at the start alone for a bot with a fixed stake, and each round it plays, each model
    stakes that value ÷ its models ÷ `rounds_at_risk` (the rounds a stake stays locked at
    once), as far as the wallet allows."""

    rounds_at_risk: int
    grant: Decimal  # NMR each bot was granted: its wealth at the start


@dataclass
class Bot:
    """A participant playing each round once, through `Participant` only.

    `act` looks at the newest round and, if this bot has not played it and the round is in
    the state it plays in (open; closed for a latecomer), downloads the round's live file,
    predicts and uploads for every model (`upload`); after its first upload it raises each
    model's stake to `stake_per_model` (`place_stakes`; a bot started again finds its stake
    already there).
    """

    username: str
    archetype: Archetype
    stake: Decimal  # NMR: each model's, or the whole bot's when the archetype splits it
    seed: int = 0
    round_staking: RoundStaking | None = None  # None: one stake, placed once (classic)
    fixed_stake: bool = False  # payouts taken, the stake kept at `stake` (else it compounds)
    fits: ExampleFits = field(default_factory=ExampleFits)  # shared by a population's bots
    played: set[int] = field(default_factory=set)
    _predict: Predict | None = None
    _model_ids: dict[str, str] = field(default_factory=dict)
    _uploaded: int | None = None  # the round uploaded and not staked for yet

    @property
    def model_names(self) -> tuple[str, ...]:
        count = self.archetype.models
        return (
            (self.username,)
            if count == 1
            else tuple(f"{self.username}_{i}" for i in range(1, count + 1))
        )

    @property
    def stake_per_model(self) -> Decimal:
        if not self.archetype.split_stake:
            return self.stake
        return (self.stake / self.archetype.models).quantize(Decimal("0.000001"))

    def looks_after(self, events: Sequence[object]) -> bool:
        """Whether `events` (the scheduler's) may have given this bot a round to play: a
        latecomer plays rounds that closed, every other bot rounds that opened."""
        due = RoundClosed if self.archetype.late else RoundOpened
        return any(isinstance(event, due) for event in events)

    def act(self, client: Participant) -> str | None:
        """Play the newest round if it is due: `upload`, then `place_stakes`; what was done, in
        words, or None."""
        done = self.upload(client)
        if done is not None:
            self.place_stakes(client)
        return done

    def upload(self, client: Participant) -> str | None:
        """Upload every model's predictions for the newest round if it is due (this bot has
        not played it, and it is open; closed, for a latecomer); what was done, in words, or
        None. The round counts as played once `place_stakes` has run."""
        number, is_open = client.round_now()
        if number is None or number in self.played or is_open == self.archetype.late:
            return None
        # the files live only while they are read or sent: nothing is left in the temp directory
        with tempfile.TemporaryDirectory(prefix="crowdquant-bot-") as name:
            folder = Path(name)
            if self._predict is None:
                train = client.download("train.parquet", folder)
                strategy = self.archetype.strategy
                self._predict = strategy(train, self.model_names, self.seed, self.fits)
            live = client.download("live.parquet", folder, round_number=number)
            if not self._model_ids:
                self._model_ids = client.models(self.model_names)
            for model, values in self._predict(live).items():
                client.upload(self._model_ids[model], live.index, values, folder)
        self._uploaded = number
        count, when = len(self.model_names), "late" if self.archetype.late else "on time"
        models = "a model" if count == 1 else f"{count} models"
        return f"{self.username} ({self.archetype.name}) uploaded {models} {when}, round {number}"

    @property
    def stakes_next(self) -> bool:
        """Whether `place_stakes` has stakes to place: on the round uploaded last where
        stakes are placed per round (a late upload leaves nothing to stake on), else the
        first stake."""
        if self._uploaded is None:
            return False
        if self.round_staking is not None:
            return not self.archetype.late
        return not self.played or (self.fixed_stake and not self.archetype.late)

    def place_stakes(self, client: Participant) -> None:
        """Stake for the round uploaded last, which then counts as played: on that round
        where stakes are placed per round, else the first time only (payouts and burns then
        move the stakes), or with a fixed stake back up to it each time, payouts sent to the
        wallet from the first. A failure leaves the round to be played again."""
        number = self._uploaded
        if number is None:
            return
        if self.stakes_next:
            if self.round_staking is not None:
                self._stake_on_round(client, self.round_staking, number)
            else:
                for name in self.model_names:
                    model_id = self._model_ids[name]
                    if self.fixed_stake and not self.played:
                        client.pay_to_wallet(model_id)
                    client.stake_to(name, model_id, self.stake_per_model)
        self.played.add(number)
        self._uploaded = None

    def _stake_on_round(self, client: Participant, staking: RoundStaking, number: int) -> None:
        """Stake each model on round `number`; a model staking there already (a retry after
        a failure part way) is left as it is."""
        ids = [self._model_ids[name] for name in self.model_names]
        wealth = client.wealth(ids, number)
        start = self.stake_per_model * len(ids)
        value = (
            start if self.fixed_stake else start + wealth.available + wealth.staked - staking.grant
        )
        each = min(value / staking.rounds_at_risk, wealth.available) / len(ids)
        each = each.quantize(Decimal("0.000001"), rounding=ROUND_DOWN)
        if each > 0:
            for model_id in ids:
                if model_id not in wealth.on_round:
                    client.stake_on_round(model_id, each)


@dataclass(frozen=True)
class Cohort:
    """`count` bots of one archetype, each staking `stake_share` × the population's stake."""

    archetype: Archetype
    count: int
    stake_share: Decimal = Decimal(1)


def population(
    counts: dict[str, int] | Sequence[Cohort],
    stake: Decimal,
    seed: int = 0,
    round_staking: RoundStaking | None = None,
    fixed_stake: bool = False,
) -> list[Bot]:
    """The bots of each cohort (or `counts[archetype]` bots of each archetype), named
    `<archetype>_<i>`; a bot stakes `stake` × its cohort's share, per model (a sybil: in
    all), once or per round (`round_staking`), letting it compound or keeping it fixed
    (`fixed_stake`). Each bot's seed is drawn from `seed` and its place in the population;
    the bots share one `ExampleFits`."""
    cohorts = (
        [Cohort(_archetype(name), count) for name, count in counts.items()]
        if isinstance(counts, dict)
        else counts
    )
    bots: list[Bot] = []
    numbered: dict[str, int] = {}
    fits = ExampleFits()
    for cohort in cohorts:
        name = cohort.archetype.name
        for _ in range(cohort.count):
            numbered[name] = numbered.get(name, 0) + 1
            bots.append(
                Bot(
                    f"{name}_{numbered[name]}",
                    cohort.archetype,
                    stake * cohort.stake_share,
                    seed=seed * 1000 + len(bots),
                    round_staking=round_staking,
                    fixed_stake=fixed_stake,
                    fits=fits,
                )
            )
    return bots


def _archetype(name: str) -> Archetype:
    if name not in ARCHETYPES:
        raise ValueError(f"unknown archetype {name!r}; known: {', '.join(ARCHETYPES)}")
    return ARCHETYPES[name]
