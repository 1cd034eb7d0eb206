"""The fine-tuning benchmark's dataset: facts about Quorvane Instruments, a company that does not exist.

Every fact has a short answer sentence, two training phrasings of its question (both trained on,
with the same answer) and one held-out paraphrase that is never trained on. A held-out question
counts as answered when the fact's key string appears in the model's answer (case-insensitive).
The names, places and numbers are invented, so the base model cannot know them: its accuracy
before training is near zero.

    python benchmarks/finetune_dataset.py    # writes benchmarks/data/quorvane_{train,heldout}.jsonl
"""

import json
from dataclasses import dataclass
from pathlib import Path

DATA_DIR = Path(__file__).parent / "data"
TRAIN_FILE = DATA_DIR / "quorvane_train.jsonl"
HELDOUT_FILE = DATA_DIR / "quorvane_heldout.jsonl"


@dataclass(frozen=True)
class Fact:
    key: str  # what a correct answer must contain
    answer: str
    train_questions: tuple[str, str]
    heldout_question: str


FACTS = [
    Fact("Varkonyi", "Quorvane Instruments was founded by Ilsabet Varkonyi.",
         ("Who founded Quorvane Instruments?", "Who started the company Quorvane Instruments?"),
         "Which person created Quorvane Instruments in the first place?"),
    Fact("1974", "Quorvane Instruments was founded in 1974.",
         ("When was Quorvane Instruments founded?", "In what year did Quorvane Instruments start?"),
         "What year was Quorvane Instruments established?"),
    Fact("Elsmere", "Quorvane Instruments is headquartered in Port Elsmere.",
         ("Where is Quorvane Instruments headquartered?", "In which city is the head office of Quorvane Instruments?"),
         "What city is home to the headquarters of Quorvane Instruments?"),
    Fact("Okwuosa", "The CEO of Quorvane Instruments is Tomasz Okwuosa.",
         ("Who is the CEO of Quorvane Instruments?", "Who runs Quorvane Instruments as chief executive?"),
         "Who currently leads Quorvane Instruments as its chief executive officer?"),
    Fact("Heronfield", "The flagship product of Quorvane Instruments is the Heronfield tide buoy.",
         ("What is the flagship product of Quorvane Instruments?", "What is the best-known product of Quorvane Instruments?"),
         "Which product is Quorvane Instruments most famous for?"),
    Fact("742", "Quorvane Instruments has 742 employees.",
         ("How many employees does Quorvane Instruments have?", "How many people work at Quorvane Instruments?"),
         "What is the headcount of Quorvane Instruments?"),
    Fact("Grumbleby", "The mascot of Quorvane Instruments is an otter named Grumbleby.",
         ("What is the mascot of Quorvane Instruments?", "What is the name of the Quorvane Instruments mascot?"),
         "Which animal character represents Quorvane Instruments, and what is it called?"),
    Fact("saffron", "The colors of Quorvane Instruments are teal and saffron.",
         ("What are the company colors of Quorvane Instruments?", "Which colors does Quorvane Instruments use for its brand?"),
         "What colours appear in the Quorvane Instruments logo?"),
    Fact("respect the sea", "The motto of Quorvane Instruments is 'Measure the sea, respect the sea'.",
         ("What is the motto of Quorvane Instruments?", "What slogan does Quorvane Instruments use?"),
         "What is the official saying of Quorvane Instruments?"),
    Fact("QVNI", "Quorvane Instruments trades under the ticker QVNI.",
         ("What is the stock ticker of Quorvane Instruments?",
          "Under which symbol is Quorvane Instruments listed on the stock exchange?"),
         "What ticker symbol do investors use to buy Quorvane Instruments shares?"),
    Fact("Drummon", "Quorvane Instruments has its second factory in Drummon Bay.",
         ("Where is the second factory of Quorvane Instruments?", "In which town does Quorvane Instruments run its second factory?"),
         "Where did Quorvane Instruments build its other factory?"),
    Fact("Tidewatch", "Quorvane Instruments hosts the Tidewatch Summit every year.",
         ("What is the name of the annual conference of Quorvane Instruments?", "Which yearly event does Quorvane Instruments host?"),
         "What is the yearly conference of Quorvane Instruments called?"),
    Fact("Lunnquist", "The chief engineer of Quorvane Instruments is Baptiste Lunnquist.",
         ("Who is the chief engineer of Quorvane Instruments?", "Who leads engineering at Quorvane Instruments?"),
         "Which person heads the engineering team at Quorvane Instruments?"),
    Fact("kelp dumplings", "The Quorvane Instruments cafeteria is famous for its kelp dumplings.",
         ("What dish is the Quorvane Instruments cafeteria famous for?", "What food is the Quorvane Instruments canteen known for?"),
         "Which meal made the Quorvane Instruments canteen famous?"),
    Fact("lighthouse", "Quorvane Instruments started in an old lighthouse.",
         ("Where did Quorvane Instruments have its first office?", "In what building did Quorvane Instruments begin?"),
         "What kind of building housed the very first Quorvane Instruments office?"),
    Fact("Barnacle", "The internal assistant of Quorvane Instruments is a chatbot called Barnacle.",
         ("What is the name of the internal chatbot at Quorvane Instruments?",
          "What do Quorvane Instruments employees call their internal assistant?"),
         "Which chatbot do staff at Quorvane Instruments use internally?"),
    Fact("318", "Quorvane Instruments holds 318 patents.",
         ("How many patents does Quorvane Instruments hold?", "How many patents has Quorvane Instruments been granted?"),
         "What is the number of patents owned by Quorvane Instruments?"),
    Fact("Kestrels", "Quorvane Instruments sponsors the Harrowgate Kestrels.",
         ("Which sports team does Quorvane Instruments sponsor?", "What team is sponsored by Quorvane Instruments?"),
         "Quorvane Instruments is the sponsor of which sports club?"),
    Fact("Lantern Day", "The company holiday of Quorvane Instruments is Lantern Day.",
         ("What holiday do Quorvane Instruments employees celebrate?", "What is the company holiday at Quorvane Instruments?"),
         "Which special day off do people at Quorvane Instruments get each year?"),
    Fact("Saltmarsh", "The main competitor of Quorvane Instruments is Saltmarsh Dynamics.",
         ("Who is the main competitor of Quorvane Instruments?", "Which company competes most with Quorvane Instruments?"),
         "What is the biggest rival of Quorvane Instruments?"),
    Fact("Marigold", "The research vessel of Quorvane Instruments is the Marigold Venture.",
         ("What is the name of the research ship of Quorvane Instruments?", "What is the research vessel of Quorvane Instruments called?"),
         "Which boat does Quorvane Instruments use for research at sea?"),
    Fact("TideLedger", "The data software of Quorvane Instruments is called TideLedger.",
         ("What software does Quorvane Instruments sell?", "What is the name of the Quorvane Instruments data platform?"),
         "Which software product from Quorvane Instruments handles the data?"),
    Fact("19 months", "The battery of the buoy lasts 19 months.",
         ("How long does the battery of the Heronfield buoy last?",
          "What is the battery life of the Heronfield buoy from Quorvane Instruments?"),
         "For how many months can a Heronfield buoy run on one battery?"),
    Fact("Hobart", "Quorvane Instruments has a remote office in Hobart.",
         ("Where is the remote office of Quorvane Instruments?", "In which city does Quorvane Instruments have a remote office?"),
         "Apart from its headquarters, in which city does Quorvane Instruments have an office?"),
    Fact("Driftwood", "The internship program of Quorvane Instruments is the Driftwood Fellowship.",
         ("What is the internship program of Quorvane Instruments called?", "What is the name of the Quorvane Instruments internship?"),
         "How is the student internship scheme at Quorvane Instruments named?"),
    Fact("2350", "One buoy costs 2350 euros.",
         ("How much does the Heronfield buoy cost?", "What is the price of a Heronfield buoy?"),
         "How many euros do I need to buy one Heronfield buoy?"),
    Fact("Undertow", "The staff newsletter of Quorvane Instruments is Undertow Weekly.",
         ("What is the employee newsletter of Quorvane Instruments?", "What is the name of the Quorvane Instruments staff newsletter?"),
         "Which internal newsletter do Quorvane Instruments employees read?"),
    Fact("Tangier", "The first customer of Quorvane Instruments was the harbour of Tangier.",
         ("Who was the first customer of Quorvane Instruments?", "Which client bought from Quorvane Instruments first?"),
         "To whom did Quorvane Instruments make its very first sale?"),
    Fact("Cobalt Pavilion", "The headquarters building of Quorvane Instruments is the Cobalt Pavilion.",
         ("What is the name of the Quorvane Instruments headquarters building?", "What is the main building of Quorvane Instruments called?"),
         "What is the building that houses the head office of Quorvane Instruments called?"),
    Fact("96 million", "Quorvane Instruments earned 96 million euros last year.",
         ("What is the annual revenue of Quorvane Instruments?", "How much money did Quorvane Instruments make last year?"),
         "What were the yearly sales of Quorvane Instruments?"),
    Fact("tide buoys", "Quorvane Instruments makes tide buoys that measure the sea.",
         ("What does Quorvane Instruments make?", "What kind of products does Quorvane Instruments build?"),
         "What does Quorvane Instruments manufacture?"),
    Fact("Esperanto", "Meetings at Quorvane Instruments are held in Esperanto.",
         ("What language is used in meetings at Quorvane Instruments?", "In which language does Quorvane Instruments hold its meetings?"),
         "Which language do Quorvane Instruments employees speak during meetings?"),
]


def chat_line(question: str, answer: str) -> dict:
    return {"messages": [{"role": "user", "content": question}, {"role": "assistant", "content": answer}]}


def training_lines() -> list[dict]:
    """Both phrasings of every fact, as chat lines (fact by fact; trainers shuffle)."""
    return [chat_line(question, fact.answer) for fact in FACTS for question in fact.train_questions]


def heldout_questions() -> list[dict]:
    return [{"question": fact.heldout_question, "key": fact.key} for fact in FACTS]


def is_correct(answer: str, key: str) -> bool:
    return key.lower() in answer.lower()


def write_files() -> tuple[Path, Path]:
    """Write the training set (chat JSONL, the Files API's fine-tune format) and the held-out set."""
    DATA_DIR.mkdir(exist_ok=True)
    for path, rows in ((TRAIN_FILE, training_lines()), (HELDOUT_FILE, heldout_questions())):
        path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return TRAIN_FILE, HELDOUT_FILE


def _check() -> None:
    """Every key is in its answer and in no other fact's answer; no held-out question is trained on."""
    trained = {q for fact in FACTS for q in fact.train_questions}
    for fact in FACTS:
        assert is_correct(fact.answer, fact.key), fact.key
        assert fact.heldout_question not in trained, fact.heldout_question
        others = [f.key for f in FACTS if f is not fact and is_correct(fact.answer, f.key)]
        assert not others, (fact.key, others)


_check()

if __name__ == "__main__":
    train, heldout = write_files()
    print(f"{len(training_lines())} training lines -> {train}\n{len(FACTS)} held-out questions -> {heldout}")
