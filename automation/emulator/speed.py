"""Speed fixes for the local AWS emulator (moto): the same answers, computed with less work.

``gaps.py`` makes moto behave like AWS; this module changes no behaviour at all, only what moto
spends computing it. Each patch returns exactly what the code it replaces returns (the soak's
figures are identical with and without them: docs/safety.md, "Duration"). The safety soak makes
about 1,150 AWS calls a schedule, so moto's per-call costs are most of its time (issue 9):

* ``get_error_model`` builds a fresh ``ErrorLookupFactory`` on every error answer, so its
  per-service cache never hits and every error (a ``ParameterNotFound``, a
  ``DBInstanceNotFound``) walks every error shape of the service's model again. The patch keeps
  one factory: the lookup table of a service model is a pure function of the model.
* ``BaseResponse.call_action`` lists every function of the response class with
  ``inspect.getmembers`` on every request, to ask whether the action is one of them. The patch
  answers that one question directly (``getmembers`` takes ``getattr`` of each ``dir`` entry:
  a name is among them exactly when ``getattr`` finds a plain function under it).
* KMS ``Key.__init__`` generates an RSA-2048 private key for every key, symmetric ones included,
  for ``Sign``/``Verify``/``GetPublicKey``, which no caller here makes. The patch generates it
  the first time it is used.
* CloudWatch ``get_metric_data`` scans every datapoint of the query window once per period of
  every query. A ``MetricStat`` query only ever keeps datapoints with its metric name, so when
  every query is a ``MetricStat`` one (no metric-math or Insights expression, which read other
  queries' results or every datapoint) the patch hands moto only the datapoints bearing one of
  the queried names.

* ``BotocoreStubber.process_request`` tries the request's URL against every service's URL
  pattern (some 180 regular expressions) on every request, in order, until one whose backend
  answers. Whether a pattern matches depends on the URL alone: the patch remembers, per URL, the
  patterns that match, and goes through those, in the same order, exactly as moto does.
* ``BackendDict`` (one per service) makes sure of its account's backend on every lookup, several
  times a request: under a lock it lists its accounts, and scans every service's ``BackendDict``
  with ``==`` for itself. The patch skips that when the account's backend is there and the
  ``BackendDict`` is among them: looked up by id in a set read again whenever moto's list changes
  length (moto's ``==`` compares the ``_id`` each ``BackendDict`` gets at birth: identity, short of
  a copy).

* botocore's ``Endpoint`` names each invocation (the ``amz-sdk-invocation-id`` header, which no
  one here reads) with ``uuid.uuid4()``, whose ``os.urandom`` costs this machine's kernel
  about half a millisecond a call. The patch draws the same version-4 UUID's 122 random bits
  from a generator of its own (seeded from ``os.urandom`` once; the process's ``random`` and
  the retry jitter's generator, ``clock.retry_clock``, are not touched).

* botocore builds each new client's endpoint ``RuleSet`` from the service's rule set data (a tree
  of some thousand rule objects), though every client of a service gets the same data (one
  loader: ``tests.lambdas.failover.harness.new_session``) and evaluating a rule set only reads
  it. The patch builds one ``RuleSet`` per (rule set data, partition data) and gives it to every
  ``EndpointProvider`` built from that same data; each provider keeps its own resolution cache.

* botocore gives each new client a new ``ServiceModel`` of the service's model data, so every
  client resolves its operations' shapes, error shapes and members afresh. A ``ServiceModel``
  is a read-only view of that data whose lookups cache their results: the patch gives the
  clients built from the same model data the same ``ServiceModel``.

* SNS signs each message it delivers to a subscription (``Signature``, ``SigningCertURL``) with a
  private key moto generates per subscription (RSA-2048), so every schedule's new subscriptions
  pay for new keys. Nothing here checks the signature; the patch generates one key, when first
  needed, for every subscription.

``patch_moto_speed()`` applies them and returns the undo function; ``Emulator.installed`` applies
it with ``gaps.patch_moto``.
"""

from __future__ import annotations

import importlib.metadata
import inspect
import os
import random
import re
import threading
import uuid
from collections.abc import Callable
from typing import Any

import botocore.endpoint
import moto.backend_index
import moto.core.errors
import moto.core.responses
import moto.kms.models
from botocore.awsrequest import AWSPreparedRequest
from botocore.client import ClientCreator
from botocore.endpoint_provider import EndpointProvider, RuleSet
from botocore.model import ServiceModel
from cryptography.hazmat.primitives.asymmetric import rsa
from moto.cloudwatch.models import CloudWatchBackend
from moto.core.base_backend import BackendDict
from moto.core.botocore_stubber import BotocoreStubber
from moto.core.config import passthrough_service, passthrough_url, service_whitelisted
from moto.core.exceptions import ServiceNotWhitelisted
from moto.core.models import DEFAULT_ACCOUNT_ID
from moto.core.request import normalize_request
from moto.core.utils import get_equivalent_url_in_aws_domain
from moto.sns.models import Subscription
from werkzeug.exceptions import HTTPException  # what moto.core.exceptions names HTTPException

_MISSING = object()

_FACTORY = moto.core.errors.ErrorLookupFactory()


def _shared_factory() -> moto.core.errors.ErrorLookupFactory:
    """``get_error_model``'s ``ErrorLookupFactory()``: the one factory, whose cache then works."""
    return _FACTORY


class _FunctionNames:
    """``method_names_from_class(clazz)`` for the one use moto makes of it: ``action in names``."""

    def __init__(self, clazz: object) -> None:
        self.clazz = clazz

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and inspect.isfunction(getattr(self.clazz, name, None))


class _LazyPrivateKey:
    """moto's KMS private key for ``key_spec``, generated when first used."""

    def __init__(self, generate: Callable[[str], Any], key_spec: str) -> None:
        self._generate = generate
        self._key_spec = key_spec
        self._key: Any = None
        self._lock = threading.Lock()

    def __getattr__(self, name: str) -> Any:
        with self._lock:
            if self._key is None:
                self._key = self._generate(self._key_spec)
        return getattr(self._key, name)


class _NamedMetrics:
    """A CloudWatch backend whose ``get_all_metrics`` holds only datapoints bearing ``names``."""

    def __init__(self, backend: CloudWatchBackend, names: set[str]) -> None:
        self._backend = backend
        self._names = names

    def get_all_metrics(self) -> list[Any]:
        return [md for md in self._backend.get_all_metrics() if md.name in self._names]

    def __getattr__(self, name: str) -> Any:
        return getattr(self._backend, name)


def _narrowed(get_metric_data: Callable[..., Any]) -> Callable[..., Any]:
    def narrowed(self: CloudWatchBackend, queries: list[dict[str, Any]], *args: Any, **kwargs: Any) -> Any:
        if not queries or not all("MetricStat" in q and "Expression" not in q for q in queries):
            return get_metric_data(self, queries, *args, **kwargs)
        names = {q["MetricStat"]["Metric"]["MetricName"] for q in queries}
        return get_metric_data(_NamedMetrics(self, names), queries, *args, **kwargs)

    return narrowed


_MATCHING: dict[tuple[int, str], list[tuple[str, re.Pattern[str]]]] = {}


def _matching(clean_url: str) -> list[tuple[str, re.Pattern[str]]]:
    """The (service, pattern) pairs of moto's URL index whose pattern matches ``clean_url``, in order."""
    patterns = moto.backend_index.backend_url_patterns
    key = (id(patterns), clean_url)
    found = _MATCHING.get(key)
    if found is None:
        found = _MATCHING[key] = [(s, p) for s, p in patterns if p.match(clean_url)]
    return found


def _process_request(self: BotocoreStubber, request: AWSPreparedRequest) -> Any:
    """moto 5's ``BotocoreStubber.process_request`` with the URL-pattern scan remembered per URL;
    otherwise the same statements in the same order."""
    parsed_url, _ = get_equivalent_url_in_aws_domain(request.url)
    clean_url = f"{parsed_url.scheme}://{parsed_url.netloc}{parsed_url.path}"
    if passthrough_url(clean_url):
        return None
    for service, _pattern in _matching(clean_url):
        if passthrough_service(service):
            return None
        if not service_whitelisted(service):
            raise ServiceNotWhitelisted(service)
        import moto.backends as backends

        backend_dict = backends.get_backend(service)  # type: ignore[call-overload]
        if isinstance(backend_dict, BackendDict):
            if "us-east-1" in backend_dict[DEFAULT_ACCOUNT_ID]:
                backend = backend_dict[DEFAULT_ACCOUNT_ID]["us-east-1"]
            else:
                backend = backend_dict[DEFAULT_ACCOUNT_ID]["aws"]
        else:
            backend = backend_dict["global"]
        for url, method_to_execute in backend.urls.items():
            if re.compile(url).match(clean_url):
                from moto.moto_api import recorder

                normalized_request = normalize_request(request)
                try:
                    recorder._record_request(normalized_request)
                    status, headers, body = method_to_execute(
                        normalized_request, normalized_request.raw_url, normalized_request.headers
                    )
                except HTTPException as e:
                    status = e.code
                    headers = e.get_headers()
                    body = e.get_body()
                return status, headers, body
    if re.compile(r"https?://.+\.amazonaws.com/.*").match(clean_url):
        return 404, {}, "Not yet implemented"
    return None


def _known_account(create: Callable[..., None]) -> Callable[..., None]:
    # The ids of ``BackendDict._instances``, read again whenever its length changed (moto only appends
    # to it, and clears it in ``reset``). A stale read cannot say yes wrongly: a dict listed before a
    # reset was emptied by it, and only ``create`` fills it again, which lists it again.
    known: dict[str, Any] = {"of": None, "length": -1, "ids": frozenset()}

    def registered(self: BackendDict[Any]) -> bool:
        instances = BackendDict._instances  # type: ignore[misc]
        if known["of"] is not instances or known["length"] != len(instances):
            known.update(of=instances, length=len(instances), ids=frozenset(map(id, instances)))
        return id(self) in known["ids"]

    def ensure(self: BackendDict[Any], account_id: str) -> None:
        if dict.__contains__(self, account_id) and registered(self):
            return  # what moto's check would find, without its lock, list and ``==`` scan
        create(self, account_id)

    return ensure


class _InvocationIds:
    """``botocore.endpoint``'s ``uuid`` module, whose ``uuid4`` draws from a generator of its own."""

    def __init__(self) -> None:
        self._random = random.Random(os.urandom(16))
        self._lock = threading.Lock()

    def uuid4(self) -> uuid.UUID:
        with self._lock:
            bits = self._random.getrandbits(128)
        return uuid.UUID(int=bits, version=4)

    def __getattr__(self, name: str) -> Any:
        return getattr(uuid, name)


_RULESETS: dict[tuple[int, int], tuple[Any, Any, RuleSet]] = {}
_RULESETS_LOCK = threading.Lock()


def _provider_init(
    self: EndpointProvider, ruleset_data: Any, partition_data: Any, excluded_params: Any = None
) -> None:
    """botocore's ``EndpointProvider.__init__``, its ``RuleSet`` shared by providers of the same data."""
    key = (id(ruleset_data), id(partition_data))
    with _RULESETS_LOCK:
        known = _RULESETS.get(key)
        if known is None or known[0] is not ruleset_data or known[1] is not partition_data:
            # The data is held with its RuleSet, so its id cannot name other data while cached.
            known = (ruleset_data, partition_data, RuleSet(**ruleset_data, partitions=partition_data))
            _RULESETS[key] = known
    self.ruleset = known[2]
    self._excluded_params = excluded_params or frozenset()


_SERVICE_MODELS: dict[tuple[int, str], tuple[Any, ServiceModel]] = {}


def _load_service_model(
    self: ClientCreator, service_name: str, api_version: str | None = None
) -> ServiceModel:
    """botocore's ``ClientCreator._load_service_model``, one ``ServiceModel`` per model data."""
    json_model = self._loader.load_service_model(service_name, "service-2", api_version=api_version)
    key = (id(json_model), service_name)
    with _RULESETS_LOCK:
        known = _SERVICE_MODELS.get(key)
        if known is None or known[0] is not json_model:
            known = _SERVICE_MODELS[key] = (json_model, ServiceModel(json_model, service_name=service_name))
    return known[1]


_SNS_KEY: list[Any] = []


def _sns_private_key(self: Subscription) -> Any:
    """moto's ``Subscription.private_key``: one key for every subscription, generated when first needed."""
    with _RULESETS_LOCK:
        if not _SNS_KEY:
            _SNS_KEY.append(rsa.generate_private_key(public_exponent=65537, key_size=2048))
        return _SNS_KEY[0]


WRITTEN_FOR = {"moto": "5.2.5", "botocore": "1.44.8"}
"""The versions whose internals these patches were read from and checked against (``_process_request``
and ``_load_service_model`` are copies of theirs). Another installed version (a fresh machine resolves
``moto>=5.1,<6`` and ``boto3>=1.34,<2`` to the newest) gets none of that package's patches: the emulator is
then slower, never different. Re-read the patched functions before raising these."""


def applies(package: str) -> bool:
    """Whether ``package`` (``moto`` or ``botocore``) is the version its patches were written for."""
    return importlib.metadata.version(package) == WRITTEN_FOR[package]


def patch_moto_speed() -> Callable[[], None]:
    """Apply the speed patches whose package is at :data:`WRITTEN_FOR`; returns the undo function."""
    saved: list[tuple[Any, str, Any]] = []

    def put(obj: Any, name: str, value: Any) -> None:
        saved.append((obj, name, obj.__dict__.get(name, _MISSING)))
        setattr(obj, name, value)

    if applies("moto"):
        put(moto.core.errors, "ErrorLookupFactory", _shared_factory)
        put(moto.core.responses, "method_names_from_class", _FunctionNames)
        generate = moto.kms.models.generate_private_key  # pyright: ignore[reportPrivateImportUsage]
        put(moto.kms.models, "generate_private_key", lambda key_spec: _LazyPrivateKey(generate, key_spec))
        put(CloudWatchBackend, "get_metric_data", _narrowed(CloudWatchBackend.get_metric_data))
        put(BotocoreStubber, "process_request", _process_request)
        put(Subscription, "private_key", _sns_private_key)
        put(
            BackendDict,
            "_create_account_specific_backend",
            _known_account(BackendDict._create_account_specific_backend),
        )
    if applies("botocore"):
        put(botocore.endpoint, "uuid", _InvocationIds())
        put(EndpointProvider, "__init__", _provider_init)
        put(ClientCreator, "_load_service_model", _load_service_model)

    def undo() -> None:
        for obj, name, value in reversed(saved):
            if value is _MISSING:
                delattr(obj, name)
            else:
                setattr(obj, name, value)

    return undo
