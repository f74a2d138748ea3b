-- The DuckDB projection: a fold over the log. Every row here can be rebuilt by replay.
CREATE TABLE IF NOT EXISTS applied (stream VARCHAR PRIMARY KEY, position BIGINT NOT NULL);
CREATE TABLE IF NOT EXISTS memories (
    memory_id VARCHAR PRIMARY KEY,
    doc BIGINT NOT NULL,                 -- stable int64 of the memory id (FAISS uses it too)
    namespace VARCHAR NOT NULL,
    text VARCHAR,                        -- NULL once erased
    metadata VARCHAR,                    -- JSON object; NULL once erased
    status VARCHAR NOT NULL,             -- active | superseded | forgotten | archived | erased
    occurred_at TIMESTAMPTZ,
    recorded_at TIMESTAMPTZ NOT NULL,
    created_position BIGINT NOT NULL,
    text_position BIGINT NOT NULL,       -- input position of the text now held
    version INTEGER NOT NULL,
    length INTEGER NOT NULL,             -- index terms in the text (BM25 document length)
    context VARCHAR,                     -- the text with the memory before it (from the embedder)
    prev_doc BIGINT,                     -- that memory: the neighbour recall propagates to
    utc_offset SMALLINT                  -- the writer's minutes from UTC (NULL: UTC)
);
-- Files made before the writer's clock was kept: the column comes last, as it would.
ALTER TABLE memories ADD COLUMN IF NOT EXISTS utc_offset SMALLINT;
CREATE INDEX IF NOT EXISTS memories_doc ON memories (doc);
CREATE TABLE IF NOT EXISTS versions (
    memory_id VARCHAR NOT NULL, namespace VARCHAR NOT NULL, version INTEGER NOT NULL,
    text VARCHAR, metadata VARCHAR, position BIGINT NOT NULL,
    recorded_at TIMESTAMPTZ NOT NULL, occurred_at TIMESTAMPTZ
);
CREATE TABLE IF NOT EXISTS feedback (
    memory_id VARCHAR NOT NULL, namespace VARCHAR NOT NULL, position BIGINT NOT NULL,
    useful BOOLEAN NOT NULL, note VARCHAR, recorded_at TIMESTAMPTZ NOT NULL
);
-- BM25 per (namespace, field): field 0 is the dated text, field 1 the text in its context.
CREATE TABLE IF NOT EXISTS postings (
    namespace VARCHAR NOT NULL, field SMALLINT NOT NULL, term VARCHAR NOT NULL,
    doc BIGINT NOT NULL, tf INTEGER NOT NULL, dl INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS term_stats (
    namespace VARCHAR NOT NULL, field SMALLINT NOT NULL, term VARCHAR NOT NULL,
    df BIGINT NOT NULL, PRIMARY KEY (namespace, field, term)
);
CREATE TABLE IF NOT EXISTS corpus (
    namespace VARCHAR NOT NULL, field SMALLINT NOT NULL, docs BIGINT NOT NULL,
    total_length BIGINT NOT NULL, PRIMARY KEY (namespace, field)
);
-- What the actors derived, per memory (doc). Rows of a memory are replaced by its newest event.
CREATE TABLE IF NOT EXISTS entities (
    namespace VARCHAR NOT NULL, doc BIGINT NOT NULL, key VARCHAR NOT NULL, type VARCHAR NOT NULL
);
CREATE TABLE IF NOT EXISTS times (
    namespace VARCHAR NOT NULL, doc BIGINT NOT NULL,
    t_start TIMESTAMPTZ NOT NULL, t_end TIMESTAMPTZ NOT NULL
);
CREATE TABLE IF NOT EXISTS facets (
    namespace VARCHAR NOT NULL, doc BIGINT NOT NULL, category VARCHAR NOT NULL,
    extractor VARCHAR NOT NULL, subject VARCHAR, attribute VARCHAR, value VARCHAR,
    position BIGINT NOT NULL                  -- the extracted event
);
CREATE TABLE IF NOT EXISTS edges (
    namespace VARCHAR NOT NULL, src BIGINT NOT NULL, dst BIGINT NOT NULL, kind VARCHAR NOT NULL,
    weight DOUBLE NOT NULL, position BIGINT NOT NULL   -- the linked event
);
CREATE TABLE IF NOT EXISTS consolidation (
    namespace VARCHAR NOT NULL, doc BIGINT NOT NULL, decision VARCHAR NOT NULL,
    target BIGINT NOT NULL, position BIGINT NOT NULL   -- the consolidated event
);
CREATE TABLE IF NOT EXISTS schedule (
    namespace VARCHAR NOT NULL, doc BIGINT NOT NULL, stability DOUBLE NOT NULL,
    difficulty DOUBLE NOT NULL, reviewed_at TIMESTAMPTZ NOT NULL, reps INTEGER NOT NULL,
    lapses INTEGER NOT NULL, position BIGINT NOT NULL  -- the decay event
);
-- Episodes: an agent's tasks, folded from the input stream's episode events.
CREATE TABLE IF NOT EXISTS episodes (
    episode_id VARCHAR PRIMARY KEY, namespace VARCHAR NOT NULL, task VARCHAR NOT NULL,
    domain VARCHAR, language VARCHAR, tags VARCHAR NOT NULL,   -- a JSON list
    started_at TIMESTAMPTZ NOT NULL, position BIGINT NOT NULL,
    completed_at TIMESTAMPTZ, success BOOLEAN, score DOUBLE, result VARCHAR, error VARCHAR,
    duration_ms DOUBLE, completed_position BIGINT,
    terms VARCHAR[] NOT NULL,                 -- the task's index terms, as recall tokenizes
    doc BIGINT                                -- the episode id's int64, as FAISS has its task
);
-- Files made before tasks were embedded: the column comes last, as it would (filled on open).
ALTER TABLE episodes ADD COLUMN IF NOT EXISTS doc BIGINT;
CREATE TABLE IF NOT EXISTS episode_steps (
    episode_id VARCHAR NOT NULL, namespace VARCHAR NOT NULL, position BIGINT NOT NULL,
    tool VARCHAR NOT NULL, action VARCHAR NOT NULL, ok BOOLEAN NOT NULL, error VARCHAR,
    latency_ms DOUBLE, tokens BIGINT, observation VARCHAR, occurred_at TIMESTAMPTZ NOT NULL
);
-- Guardrails: the rules of each namespace, and the learned warnings silenced.
CREATE TABLE IF NOT EXISTS guard_rules (
    rule_id VARCHAR PRIMARY KEY, namespace VARCHAR NOT NULL, text VARCHAR NOT NULL,
    action VARCHAR NOT NULL, pattern VARCHAR, position BIGINT NOT NULL,
    removed BOOLEAN NOT NULL DEFAULT FALSE
);
CREATE TABLE IF NOT EXISTS guard_silenced (
    namespace VARCHAR NOT NULL, learned_id VARCHAR NOT NULL, position BIGINT NOT NULL
);
-- Patterns: each pattern the patterns actor learned, as its newest event says.
CREATE TABLE IF NOT EXISTS patterns (
    pattern_id VARCHAR NOT NULL, namespace VARCHAR NOT NULL, kind VARCHAR NOT NULL,
    family VARCHAR NOT NULL, task VARCHAR NOT NULL, domain VARCHAR,
    steps VARCHAR[] NOT NULL, point VARCHAR, branches VARCHAR NOT NULL,  -- JSON [[step, n, rate]]
    error VARCHAR, failed_step VARCHAR, families VARCHAR[] NOT NULL,
    terms VARCHAR NOT NULL,                   -- JSON {term: share of the family's tasks}
    support INTEGER NOT NULL, success_rate DOUBLE NOT NULL, episodes VARCHAR[] NOT NULL,
    active BOOLEAN NOT NULL, position BIGINT NOT NULL  -- the newest pattern event
);
