from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class WireDtype(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    WIRE_DTYPE_UNSPECIFIED: _ClassVar[WireDtype]
    WIRE_DTYPE_FLOAT32: _ClassVar[WireDtype]
    WIRE_DTYPE_FLOAT16: _ClassVar[WireDtype]
    WIRE_DTYPE_BFLOAT16: _ClassVar[WireDtype]

class Algorithm(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ALGORITHM_UNSPECIFIED: _ClassVar[Algorithm]
    ALGORITHM_AEASGD: _ClassVar[Algorithm]
    ALGORITHM_EASGD: _ClassVar[Algorithm]
    ALGORITHM_DOWNPOUR: _ClassVar[Algorithm]
    ALGORITHM_ADAG: _ClassVar[Algorithm]
    ALGORITHM_DYNSGD: _ClassVar[Algorithm]

class RunPhase(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    RUN_PHASE_UNSPECIFIED: _ClassVar[RunPhase]
    RUN_PHASE_WAITING: _ClassVar[RunPhase]
    RUN_PHASE_RUNNING: _ClassVar[RunPhase]
    RUN_PHASE_EVALUATING: _ClassVar[RunPhase]
    RUN_PHASE_SUCCEEDED: _ClassVar[RunPhase]
    RUN_PHASE_FAILED: _ClassVar[RunPhase]
WIRE_DTYPE_UNSPECIFIED: WireDtype
WIRE_DTYPE_FLOAT32: WireDtype
WIRE_DTYPE_FLOAT16: WireDtype
WIRE_DTYPE_BFLOAT16: WireDtype
ALGORITHM_UNSPECIFIED: Algorithm
ALGORITHM_AEASGD: Algorithm
ALGORITHM_EASGD: Algorithm
ALGORITHM_DOWNPOUR: Algorithm
ALGORITHM_ADAG: Algorithm
ALGORITHM_DYNSGD: Algorithm
RUN_PHASE_UNSPECIFIED: RunPhase
RUN_PHASE_WAITING: RunPhase
RUN_PHASE_RUNNING: RunPhase
RUN_PHASE_EVALUATING: RunPhase
RUN_PHASE_SUCCEEDED: RunPhase
RUN_PHASE_FAILED: RunPhase

class TensorInfo(_message.Message):
    __slots__ = ("dtype", "num_elements", "num_bytes", "model_version")
    DTYPE_FIELD_NUMBER: _ClassVar[int]
    NUM_ELEMENTS_FIELD_NUMBER: _ClassVar[int]
    NUM_BYTES_FIELD_NUMBER: _ClassVar[int]
    MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    dtype: WireDtype
    num_elements: int
    num_bytes: int
    model_version: str
    def __init__(self, dtype: _Optional[_Union[WireDtype, str]] = ..., num_elements: _Optional[int] = ..., num_bytes: _Optional[int] = ..., model_version: _Optional[str] = ...) -> None: ...

class RegisterRequest(_message.Message):
    __slots__ = ("run_id", "rank", "worker_id")
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    RANK_FIELD_NUMBER: _ClassVar[int]
    WORKER_ID_FIELD_NUMBER: _ClassVar[int]
    run_id: str
    rank: int
    worker_id: str
    def __init__(self, run_id: _Optional[str] = ..., rank: _Optional[int] = ..., worker_id: _Optional[str] = ...) -> None: ...

class RegisterInfo(_message.Message):
    __slots__ = ("rank", "world_size", "run_config_json", "update_counter", "resume_batches", "tensor", "data_plane")
    RANK_FIELD_NUMBER: _ClassVar[int]
    WORLD_SIZE_FIELD_NUMBER: _ClassVar[int]
    RUN_CONFIG_JSON_FIELD_NUMBER: _ClassVar[int]
    UPDATE_COUNTER_FIELD_NUMBER: _ClassVar[int]
    RESUME_BATCHES_FIELD_NUMBER: _ClassVar[int]
    TENSOR_FIELD_NUMBER: _ClassVar[int]
    DATA_PLANE_FIELD_NUMBER: _ClassVar[int]
    rank: int
    world_size: int
    run_config_json: str
    update_counter: int
    resume_batches: int
    tensor: TensorInfo
    data_plane: str
    def __init__(self, rank: _Optional[int] = ..., world_size: _Optional[int] = ..., run_config_json: _Optional[str] = ..., update_counter: _Optional[int] = ..., resume_batches: _Optional[int] = ..., tensor: _Optional[_Union[TensorInfo, _Mapping]] = ..., data_plane: _Optional[str] = ...) -> None: ...

class RegisterResponse(_message.Message):
    __slots__ = ("info", "chunk")
    INFO_FIELD_NUMBER: _ClassVar[int]
    CHUNK_FIELD_NUMBER: _ClassVar[int]
    info: RegisterInfo
    chunk: bytes
    def __init__(self, info: _Optional[_Union[RegisterInfo, _Mapping]] = ..., chunk: _Optional[bytes] = ...) -> None: ...

class PullRequest(_message.Message):
    __slots__ = ("run_id", "rank")
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    RANK_FIELD_NUMBER: _ClassVar[int]
    run_id: str
    rank: int
    def __init__(self, run_id: _Optional[str] = ..., rank: _Optional[int] = ...) -> None: ...

class PullHeader(_message.Message):
    __slots__ = ("update_counter", "tensor")
    UPDATE_COUNTER_FIELD_NUMBER: _ClassVar[int]
    TENSOR_FIELD_NUMBER: _ClassVar[int]
    update_counter: int
    tensor: TensorInfo
    def __init__(self, update_counter: _Optional[int] = ..., tensor: _Optional[_Union[TensorInfo, _Mapping]] = ...) -> None: ...

class PullResponse(_message.Message):
    __slots__ = ("header", "chunk")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    CHUNK_FIELD_NUMBER: _ClassVar[int]
    header: PullHeader
    chunk: bytes
    def __init__(self, header: _Optional[_Union[PullHeader, _Mapping]] = ..., chunk: _Optional[bytes] = ...) -> None: ...

class CommitHeader(_message.Message):
    __slots__ = ("run_id", "rank", "based_on_counter", "sequence", "batches_done", "samples_done", "epoch", "loss", "accuracy", "window_batches", "final", "tensor", "elapsed_seconds", "blocked_seconds", "lag_batches")
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    RANK_FIELD_NUMBER: _ClassVar[int]
    BASED_ON_COUNTER_FIELD_NUMBER: _ClassVar[int]
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    BATCHES_DONE_FIELD_NUMBER: _ClassVar[int]
    SAMPLES_DONE_FIELD_NUMBER: _ClassVar[int]
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    LOSS_FIELD_NUMBER: _ClassVar[int]
    ACCURACY_FIELD_NUMBER: _ClassVar[int]
    WINDOW_BATCHES_FIELD_NUMBER: _ClassVar[int]
    FINAL_FIELD_NUMBER: _ClassVar[int]
    TENSOR_FIELD_NUMBER: _ClassVar[int]
    ELAPSED_SECONDS_FIELD_NUMBER: _ClassVar[int]
    BLOCKED_SECONDS_FIELD_NUMBER: _ClassVar[int]
    LAG_BATCHES_FIELD_NUMBER: _ClassVar[int]
    run_id: str
    rank: int
    based_on_counter: int
    sequence: int
    batches_done: int
    samples_done: int
    epoch: float
    loss: float
    accuracy: float
    window_batches: int
    final: bool
    tensor: TensorInfo
    elapsed_seconds: float
    blocked_seconds: float
    lag_batches: int
    def __init__(self, run_id: _Optional[str] = ..., rank: _Optional[int] = ..., based_on_counter: _Optional[int] = ..., sequence: _Optional[int] = ..., batches_done: _Optional[int] = ..., samples_done: _Optional[int] = ..., epoch: _Optional[float] = ..., loss: _Optional[float] = ..., accuracy: _Optional[float] = ..., window_batches: _Optional[int] = ..., final: _Optional[bool] = ..., tensor: _Optional[_Union[TensorInfo, _Mapping]] = ..., elapsed_seconds: _Optional[float] = ..., blocked_seconds: _Optional[float] = ..., lag_batches: _Optional[int] = ...) -> None: ...

class CommitRequest(_message.Message):
    __slots__ = ("header", "chunk")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    CHUNK_FIELD_NUMBER: _ClassVar[int]
    header: CommitHeader
    chunk: bytes
    def __init__(self, header: _Optional[_Union[CommitHeader, _Mapping]] = ..., chunk: _Optional[bytes] = ...) -> None: ...

class CommitResponse(_message.Message):
    __slots__ = ("update_counter", "staleness", "run_done")
    UPDATE_COUNTER_FIELD_NUMBER: _ClassVar[int]
    STALENESS_FIELD_NUMBER: _ClassVar[int]
    RUN_DONE_FIELD_NUMBER: _ClassVar[int]
    update_counter: int
    staleness: int
    run_done: bool
    def __init__(self, update_counter: _Optional[int] = ..., staleness: _Optional[int] = ..., run_done: _Optional[bool] = ...) -> None: ...

class ExchangeRequest(_message.Message):
    __slots__ = ("pull", "chunk", "header")
    PULL_FIELD_NUMBER: _ClassVar[int]
    CHUNK_FIELD_NUMBER: _ClassVar[int]
    HEADER_FIELD_NUMBER: _ClassVar[int]
    pull: PullRequest
    chunk: bytes
    header: CommitHeader
    def __init__(self, pull: _Optional[_Union[PullRequest, _Mapping]] = ..., chunk: _Optional[bytes] = ..., header: _Optional[_Union[CommitHeader, _Mapping]] = ...) -> None: ...

class ExchangeResponse(_message.Message):
    __slots__ = ("header", "chunk", "ack")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    CHUNK_FIELD_NUMBER: _ClassVar[int]
    ACK_FIELD_NUMBER: _ClassVar[int]
    header: PullHeader
    chunk: bytes
    ack: CommitResponse
    def __init__(self, header: _Optional[_Union[PullHeader, _Mapping]] = ..., chunk: _Optional[bytes] = ..., ack: _Optional[_Union[CommitResponse, _Mapping]] = ...) -> None: ...

class PullOneRequest(_message.Message):
    __slots__ = ("run_id", "rank")
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    RANK_FIELD_NUMBER: _ClassVar[int]
    run_id: str
    rank: int
    def __init__(self, run_id: _Optional[str] = ..., rank: _Optional[int] = ...) -> None: ...

class PullOneResponse(_message.Message):
    __slots__ = ("header", "chunk")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    CHUNK_FIELD_NUMBER: _ClassVar[int]
    header: PullHeader
    chunk: bytes
    def __init__(self, header: _Optional[_Union[PullHeader, _Mapping]] = ..., chunk: _Optional[bytes] = ...) -> None: ...

class CommitOneRequest(_message.Message):
    __slots__ = ("pull", "chunk", "header")
    PULL_FIELD_NUMBER: _ClassVar[int]
    CHUNK_FIELD_NUMBER: _ClassVar[int]
    HEADER_FIELD_NUMBER: _ClassVar[int]
    pull: PullRequest
    chunk: bytes
    header: CommitHeader
    def __init__(self, pull: _Optional[_Union[PullRequest, _Mapping]] = ..., chunk: _Optional[bytes] = ..., header: _Optional[_Union[CommitHeader, _Mapping]] = ...) -> None: ...

class CommitOneResponse(_message.Message):
    __slots__ = ("header", "chunk", "ack")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    CHUNK_FIELD_NUMBER: _ClassVar[int]
    ACK_FIELD_NUMBER: _ClassVar[int]
    header: PullHeader
    chunk: bytes
    ack: CommitResponse
    def __init__(self, header: _Optional[_Union[PullHeader, _Mapping]] = ..., chunk: _Optional[bytes] = ..., ack: _Optional[_Union[CommitResponse, _Mapping]] = ...) -> None: ...

class HeartbeatRequest(_message.Message):
    __slots__ = ("run_id", "rank", "epoch", "batches_done")
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    RANK_FIELD_NUMBER: _ClassVar[int]
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    BATCHES_DONE_FIELD_NUMBER: _ClassVar[int]
    run_id: str
    rank: int
    epoch: float
    batches_done: int
    def __init__(self, run_id: _Optional[str] = ..., rank: _Optional[int] = ..., epoch: _Optional[float] = ..., batches_done: _Optional[int] = ...) -> None: ...

class HeartbeatResponse(_message.Message):
    __slots__ = ("update_counter", "run_done")
    UPDATE_COUNTER_FIELD_NUMBER: _ClassVar[int]
    RUN_DONE_FIELD_NUMBER: _ClassVar[int]
    update_counter: int
    run_done: bool
    def __init__(self, update_counter: _Optional[int] = ..., run_done: _Optional[bool] = ...) -> None: ...

class LeaveRequest(_message.Message):
    __slots__ = ("run_id", "rank", "reason")
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    RANK_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    run_id: str
    rank: int
    reason: str
    def __init__(self, run_id: _Optional[str] = ..., rank: _Optional[int] = ..., reason: _Optional[str] = ...) -> None: ...

class LeaveResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class StatusRequest(_message.Message):
    __slots__ = ("run_id",)
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    run_id: str
    def __init__(self, run_id: _Optional[str] = ...) -> None: ...

class ClassificationFigures(_message.Message):
    __slots__ = ("accuracy", "macro_recall", "macro_precision", "macro_f1", "labels", "confusion")
    ACCURACY_FIELD_NUMBER: _ClassVar[int]
    MACRO_RECALL_FIELD_NUMBER: _ClassVar[int]
    MACRO_PRECISION_FIELD_NUMBER: _ClassVar[int]
    MACRO_F1_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    CONFUSION_FIELD_NUMBER: _ClassVar[int]
    accuracy: float
    macro_recall: float
    macro_precision: float
    macro_f1: float
    labels: _containers.RepeatedScalarFieldContainer[str]
    confusion: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, accuracy: _Optional[float] = ..., macro_recall: _Optional[float] = ..., macro_precision: _Optional[float] = ..., macro_f1: _Optional[float] = ..., labels: _Optional[_Iterable[str]] = ..., confusion: _Optional[_Iterable[int]] = ...) -> None: ...

class StatusResponse(_message.Message):
    __slots__ = ("run_id", "phase", "message", "model", "algorithm", "world_size", "workers_connected", "workers_finished", "workers_lost", "epoch", "epochs", "progress", "update_counter", "commits_total", "commits_rejected", "training_seconds", "wtpe_seconds", "node_hours", "cost", "currency", "figures", "restarts")
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    PHASE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    ALGORITHM_FIELD_NUMBER: _ClassVar[int]
    WORLD_SIZE_FIELD_NUMBER: _ClassVar[int]
    WORKERS_CONNECTED_FIELD_NUMBER: _ClassVar[int]
    WORKERS_FINISHED_FIELD_NUMBER: _ClassVar[int]
    WORKERS_LOST_FIELD_NUMBER: _ClassVar[int]
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    EPOCHS_FIELD_NUMBER: _ClassVar[int]
    PROGRESS_FIELD_NUMBER: _ClassVar[int]
    UPDATE_COUNTER_FIELD_NUMBER: _ClassVar[int]
    COMMITS_TOTAL_FIELD_NUMBER: _ClassVar[int]
    COMMITS_REJECTED_FIELD_NUMBER: _ClassVar[int]
    TRAINING_SECONDS_FIELD_NUMBER: _ClassVar[int]
    WTPE_SECONDS_FIELD_NUMBER: _ClassVar[int]
    NODE_HOURS_FIELD_NUMBER: _ClassVar[int]
    COST_FIELD_NUMBER: _ClassVar[int]
    CURRENCY_FIELD_NUMBER: _ClassVar[int]
    FIGURES_FIELD_NUMBER: _ClassVar[int]
    RESTARTS_FIELD_NUMBER: _ClassVar[int]
    run_id: str
    phase: RunPhase
    message: str
    model: str
    algorithm: Algorithm
    world_size: int
    workers_connected: int
    workers_finished: int
    workers_lost: int
    epoch: float
    epochs: int
    progress: float
    update_counter: int
    commits_total: int
    commits_rejected: int
    training_seconds: float
    wtpe_seconds: float
    node_hours: float
    cost: float
    currency: str
    figures: ClassificationFigures
    restarts: int
    def __init__(self, run_id: _Optional[str] = ..., phase: _Optional[_Union[RunPhase, str]] = ..., message: _Optional[str] = ..., model: _Optional[str] = ..., algorithm: _Optional[_Union[Algorithm, str]] = ..., world_size: _Optional[int] = ..., workers_connected: _Optional[int] = ..., workers_finished: _Optional[int] = ..., workers_lost: _Optional[int] = ..., epoch: _Optional[float] = ..., epochs: _Optional[int] = ..., progress: _Optional[float] = ..., update_counter: _Optional[int] = ..., commits_total: _Optional[int] = ..., commits_rejected: _Optional[int] = ..., training_seconds: _Optional[float] = ..., wtpe_seconds: _Optional[float] = ..., node_hours: _Optional[float] = ..., cost: _Optional[float] = ..., currency: _Optional[str] = ..., figures: _Optional[_Union[ClassificationFigures, _Mapping]] = ..., restarts: _Optional[int] = ...) -> None: ...
