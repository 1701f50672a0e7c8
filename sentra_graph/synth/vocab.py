"""Slot fillers shared by every prompt kind: names, topics, code, passages, numbers.

Legit users and farms draw from these same symbols; farms differ only in how they repeat a
skeleton (see :mod:`sentra_graph.synth.prompts`).
"""

from __future__ import annotations

__all__ = ["FILLERS"]


def _items(text: str) -> list[str]:
    """Split a ``|``-separated word list (long lists read better as running text)."""
    return text.split("|")


_NAMES = _items(
    "Ana|Ben|Chloe|David|Elena|Farid|Grace|Hiro|Isabel|Jamal|Kim|Lena|Mateo|Nadia|Omar|Priya|"
    "Quinn|Rosa|Samir|Tara|Umar|Vera|Wei|Xavier|Yara|Zane|Aiko|Bruno|Carla|Dmitri|Emma|Fatima|"
    "Gabriel|Hana|Ivan|Julia|Kofi|Lucia|Marco|Nina|Oscar|Paula|Rahul|Sofia|Tom|Uma|Victor|Wanda|"
    "Yusuf|Zoe|Liam|Mia|Noah|Ava|Ethan|Olivia|Lucas|Amara|Tariq|Ingrid"
)

_CITIES = _items(
    "Lisbon|Toronto|Nairobi|Osaka|Berlin|Austin|Lyon|Seoul|Denver|Porto|Dublin|Mumbai|Chicago|"
    "Melbourne|Krakow|Bogota|Cairo|Oslo|Hanoi|Manila|Seattle|Madrid|Lagos|Zurich|Montreal|"
    "Jakarta|Vienna|Boston|Santiago|Prague|Istanbul|Helsinki|Atlanta|Taipei|Munich|Lima"
)

_TOPICS = _items(
    "photosynthesis|the French Revolution|inflation|black holes|climate change|the stock market|"
    "machine learning|the immune system|compound interest|the Roman Empire|plate tectonics|"
    "supply and demand|quantum entanglement|the water cycle|vaccines|blockchain|the Cold War|"
    "renewable energy|sleep|intermittent fasting|remote work|urban planning|coral reefs|"
    "the printing press|electric cars|social media|the Renaissance|antibiotics|game theory|"
    "the housing market|volcanoes|bees|meditation|the gut microbiome|nuclear fusion|"
    "the Silk Road|minimum wage|jazz|the human genome|coffee|marathon training|sourdough|"
    "tax brackets|the moon landing|CRISPR|dark matter|ancient Egypt|the Industrial Revolution|"
    "language learning|public transport|opera|chess openings|personal budgeting|dinosaurs|"
    "the electoral college|memory|procrastination|the ocean tides|recycling|solar panels|"
    "the Byzantine Empire|microplastics|neural networks|cryptography|the placebo effect|"
    "carbon taxes|gardening|the Great Depression|rainforests|startups|impressionism|"
    "the theory of evolution|interest rates|the Ottoman Empire|mortgages|wind turbines|"
    "the human heart|typography|film noir|soil erosion|the Olympics|urban heat islands|"
    "behavioural economics|the speed of light|migration of birds|4-day work weeks|"
    "open source software|ransomware|the Big Bang|mushrooms|tea ceremonies|volunteering"
)

_CS_CONCEPTS = _items(
    "recursion|hash tables|the TCP handshake|Big-O notation|garbage collection|closures|"
    "database indexes|the CAP theorem|dependency injection|async/await|mutexes|REST APIs|"
    "Docker containers|Kubernetes pods|binary search|dynamic programming|memoization|"
    "virtual memory|OAuth 2.0|JWT tokens|consistent hashing|bloom filters|B-trees|"
    "event loops|message queues|SQL joins|database transactions|CORS|DNS resolution|"
    "load balancing|rate limiting|unit testing|monads|generics|type inference|"
    "the actor model|gradient descent|backpropagation|attention in transformers|"
    "race conditions|deadlocks|immutability|CSS flexbox|React hooks|git rebase|"
    "microservices|eventual consistency|TLS certificates|vector databases|regular expressions"
)

_LANGS = _items(
    "Python|JavaScript|TypeScript|Go|Rust|Java|C++|C#|SQL|Bash|Kotlin|Ruby|PHP|Swift|R|Scala"
)

_HUMAN_LANGS = _items(
    "French|Spanish|German|Japanese|Portuguese|Italian|Korean|Chinese|Hindi|Arabic|Dutch|"
    "Polish|Turkish|Vietnamese|Swedish|Indonesian|Greek|Ukrainian"
)

_ITEMS = _items(
    "apples|tickets|books|marbles|cupcakes|bottles|pencils|stamps|coins|boxes|chairs|"
    "notebooks|oranges|cookies|bricks|tiles|shirts|bikes|eggs|seeds"
)

FILLERS: dict[str, list[str]] = {
    "name": _NAMES,
    "city": _CITIES,
    "topic": _TOPICS,
    "cs_concept": _CS_CONCEPTS,
    "lang": _LANGS,
    "human_lang": _HUMAN_LANGS,
    "item": _ITEMS,
    "audience": [
        "a five-year-old",
        "a high school student",
        "my grandmother",
        "a senior engineer",
        "a complete beginner",
        "a product manager",
        "someone with no math background",
        "a first-year university student",
        "a busy executive",
        "my team at work",
    ],
    "tone": [
        "formal",
        "friendly",
        "casual",
        "persuasive",
        "professional",
        "warm",
        "concise",
        "enthusiastic",
        "neutral",
        "humorous",
    ],
    "doc_type": [
        "article",
        "email thread",
        "meeting notes",
        "paper abstract",
        "book chapter",
        "customer review",
        "news story",
        "report",
        "blog post",
        "transcript",
        "policy document",
        "lecture notes",
    ],
    "company": [
        "{{Acme|Northwind|Blue Harbor|Redwood|Pinecrest|Silverline|Brightpath|Ironbridge|"
        "Cedar|Lumen|Orbit|Summit|Harborview|Kestrel|Nimbus}} "
        "{{Labs|Logistics|Health|Analytics|Foods|Energy|Robotics|Finance|Media|Studio}}"
    ],
    "person": ["<<name>>", "<<name>> from <<city>>", "my friend <<name>>", "<<name>>"],
    "data_obj": [
        "a list of dictionaries",
        "a CSV file",
        "a JSON payload",
        "a linked list",
        "a binary tree",
        "a date string",
        "a log file",
        "a nested list",
        "a pandas DataFrame",
        "an array of integers",
        "a string of words",
        "a directory of images",
        "an HTTP response",
        "a SQL table of orders",
        "a matrix",
        "a stream of events",
        "a YAML config file",
        "a list of user records",
    ],
    "code_verb": [
        "parses",
        "validates",
        "sorts",
        "deduplicates",
        "merges",
        "flattens",
        "counts the words in",
        "reverses",
        "groups",
        "filters",
        "compresses",
        "paginates",
        "normalises",
        "caches",
        "serialises",
        "finds duplicates in",
        "computes the median of",
        "retries on failure while reading",
    ],
    "code_task": [
        "<<code_verb>> <<data_obj>>{{| and returns the result| in O(n) time| without external "
        "libraries| using recursion| and handles empty input| with type hints}}",
        "{{checks whether|tests if}} a string is a palindrome",
        "finds the {{shortest|longest}} path in a graph",
        "returns the ##2-10##th Fibonacci number{{| iteratively| with memoization}}",
        "converts <<data_obj>> to {{JSON|CSV|XML|a dictionary}}",
        "implements {{an LRU cache|a rate limiter|a trie|a priority queue|a thread pool|"
        "a retry decorator|binary search}}",
        "reads <<data_obj>> and {{prints a summary|writes it to disk|sends it to an API}}",
    ],
    "ident": [
        "{{get|load|parse|compute|build|update|fetch|validate|merge|sort}}_"
        "{{user|order|config|item|data|total|score|record|matrix|token|event}}{{|s|_list|_map}}"
    ],
    "var": ["x", "items", "data", "result", "values", "row", "n", "total", "acc", "buf", "df"],
    "code": [
        "def <<ident=f>>(n=##2-50##):\n    <<var=v>> = []\n    for i in range(n):\n"
        "        <<var=v>>.append(i * ##2-9##)\n    return <<var=v>>",
        "def <<ident=f>>(<<var=v>>, n=##1-20##):\n    if not <<var=v>>:\n        return None\n"
        "    return sorted(<<var=v>>)[:n]",
        "function <<ident=f>>(<<var=v>>) {\n  return <<var=v>>.filter((v) => v > ##0-100##)"
        ".map((v) => v * ##2-9##);\n}",
        "const <<var=v>> = await fetch(`/api/<<ident=f>>?limit=##10-500##`);\n"
        "const body = await <<var=v>>.json();\nconsole.log(body.length);",
        "SELECT customer_id, COUNT(*) AS n\nFROM orders\nWHERE created_at > '2024-0##1-9##-01'\n"
        "GROUP BY customer_id\nHAVING COUNT(*) > ##2-20##;",
        "func <<ident=f>>(<<var=v>> []int) int {\n\tsum := 0\n\tfor _, v := range <<var=v>> {\n"
        "\t\tsum += v\n\t}\n\treturn sum / ##2-9##\n}",
        "fn <<ident=f>>(<<var=v>>: &[i32]) -> i32 {\n"
        "    <<var=v>>.iter().map(|v| v * ##2-9##).sum()\n}",
        'for f in *.log; do\n  grep -c "ERROR" "$f" | awk \'$1 > ##5-99##\'\ndone',
        "class <<ident=f>>:\n    def __init__(self, <<var=v>>):\n"
        "        self.<<var=v>> = <<var=v>>\n\n"
        "    def run(self):\n        return self.<<var=v>> * ##2-9##",
        "import pandas as pd\ndf = pd.read_csv('<<ident=f>>.csv')\n"
        "print(df.groupby('<<ident=f>>').size().head(##3-20##))",
        "public int <<ident=f>>(int[] <<var=v>>) {\n    int best = 0;\n"
        "    for (int v : <<var=v>>) best = Math.max(best, v);\n    return best;\n}",
    ],
    "error_msg": [
        "TypeError: 'NoneType' object is not subscriptable",
        "KeyError: '<<ident>>'",
        "IndexError: list index out of range",
        "segmentation fault (core dumped)",
        "TypeError: Cannot read properties of undefined (reading '<<ident>>')",
        "error[E0502]: cannot borrow `<<var>>` as mutable because it is also borrowed as immutable",
        "ModuleNotFoundError: No module named '<<ident>>'",
        "java.lang.NullPointerException at line ##10-400##",
        "psycopg.errors.UniqueViolation: duplicate key value violates unique constraint",
        "CORS policy: No 'Access-Control-Allow-Origin' header is present",
        "panic: runtime error: index out of range [##1-9##] with length ##0-1##",
    ],
    "subject": [
        "The company",
        "Our team",
        "The city council",
        "Researchers at the university",
        "The new policy",
        "<<name>>",
        "The committee",
        "Most customers",
        "The government",
        "The project",
        "A recent study",
        "The startup",
        "Local farmers",
        "The hospital",
    ],
    "verb_phrase": [
        "announced a plan to reduce costs by ##5-40## percent",
        "reported strong growth in the last quarter",
        "decided to postpone the launch until next year",
        "found a link between <<topic>> and productivity",
        "raised concerns about <<topic>>",
        "hired ##3-60## new people",
        "missed its deadline for the second time",
        "invested heavily in <<topic>>",
        "published a long report on <<topic>>",
        "agreed to share data with partners in <<city>>",
        "struggled with delays caused by the weather",
        "reached ##100-9000## users within a month",
        "moved its headquarters to <<city>>",
        "cut its budget for <<topic>>",
    ],
    "sentence": [
        "<<subject>> <<verb_phrase>>{{.| last year.| according to the report.| this week.}}",
        "{{However|Meanwhile|As a result|In addition|Still}}, <<subject_lc>> <<verb_phrase>>.",
        "Critics argue that <<topic>> {{is overrated|needs more funding|is misunderstood}}.",
        "The results were {{mixed|surprising|disappointing|encouraging}}, with about ##10-90## "
        "percent of respondents in favour.",
        "<<name>> said the decision about <<topic>> was {{long overdue|a mistake|"
        "a step in the right direction}}.",
    ],
    "subject_lc": [
        "the company",
        "our team",
        "the council",
        "the researchers",
        "most customers",
        "the government",
        "the startup",
        "local farmers",
    ],
    "passage": [
        "<<sentence>> <<sentence>> <<sentence>>",
        "<<sentence>> <<sentence>> <<sentence>> <<sentence>>",
        "<<sentence>> <<sentence>> <<sentence>> <<sentence>> <<sentence>>",
        "<<sentence>> <<sentence>>\n\n<<sentence>> <<sentence>> <<sentence>> <<sentence>>",
    ],
    "short_text": [
        "{{Where is the nearest train station|How much does this cost|Can we move the meeting "
        "to Friday|I will be late today|The package arrived damaged|Thank you for your help}}"
        "{{?|.|!}}",
        "<<sentence>>",
        "Please send me the {{invoice|report|slides|contract}} before ##1-9## pm.",
    ],
    "math_expr": [
        "##2-9##x^##2-5## + ##1-20##x - ##1-50##",
        "sin(##2-5##x) * e^x",
        "ln(x^2 + ##1-9##)",
        "(x + ##1-9##)/(x - ##1-9##)",
        "x^##2-4## * cos(x)",
        "sqrt(##2-9##x + ##1-30##)",
    ],
    "word_problem": [
        "<<name>> has ##3-90## <<item>> and buys ##2-40## more, then gives away a third of them. "
        "How many <<item>> are left?",
        "A train leaves <<city>> at ##40-120## km/h and another leaves <<city>> ##1-3## hours "
        "later at ##60-160## km/h. When does the second train catch up?",
        "A shop sells <<item>> at $##2-30## each with a ##5-40##% discount on orders over "
        "##10-50## units. What does <<name>> pay for ##11-90## units?",
        "If ##2-12## workers build a wall in ##3-20## days, how long do ##3-30## workers need?",
        "The sum of two numbers is ##20-200## and their difference is ##2-40##. "
        "What are the numbers?",
        "A rectangle has a perimeter of ##20-200## cm and its length is ##2-5## times its width. "
        "Find its area.",
        "<<name>> invests $##500-9000## at ##2-9##% interest compounded yearly. "
        "How much is it worth after ##2-15## years?",
        "What is the probability of rolling a sum of ##3-11## with two fair dice?",
        "Find the derivative of <<math_expr>>.",
        "Solve for x: ##2-9##x + ##1-50## = ##51-200##.",
        "Compute the integral of <<math_expr>> from 0 to ##1-5##.",
        "How many ways can ##3-9## people sit around a round table?",
    ],
    "logic_puzzle": [
        "<<name>>, <<name>> and <<name>> each own a different pet: a cat, a dog and a parrot. "
        "<<name>> is allergic to fur. Who owns the parrot?",
        "If all <<item>> are red and some red things are heavy, does it follow that some "
        "<<item>> are heavy?",
        "A box has ##3-9## red and ##3-9## blue balls. What is the minimum number you must draw "
        "to be sure of two of the same colour?",
        "Is the statement 'every prime greater than ##2-9## is odd' true? Justify it.",
        "Prove that the sum of the first n odd numbers is n^2.",
        "Three switches control three bulbs in another room. How can you tell which switch "
        "controls which bulb with one visit?",
    ],
    "question": [
        "What causes <<topic>>?",
        "Why does <<topic>> matter for ordinary people?",
        "How does <<cs_concept>> work?",
        "What are the pros and cons of <<topic>>?",
        "Explain <<cs_concept>> in simple terms.",
        "What is the difference between <<cs_concept>> and <<cs_concept>>?",
        "<<word_problem>>",
    ],
    "answer_text": [
        "<<passage>>",
        "It depends. <<sentence>> <<sentence>>",
        "The answer is ##1-500##. <<sentence>>",
        "First, <<sentence_lc>> Then <<sentence_lc>> So the result is ##2-99##.",
    ],
    "sentence_lc": [
        "we add ##2-30## to both sides.",
        "we divide by ##2-9##.",
        "the function is called with an empty list.",
        "the loop runs ##2-99## times.",
        "<<subject_lc>> <<verb_phrase>>.",
    ],
    "mcq": [
        "<<question>>\nA) ##1-99##\nB) ##1-99##\nC) ##1-99##\nD) ##1-99##",
        "Which of the following best describes <<cs_concept>>?\nA) <<sentence>>\n"
        "B) <<sentence>>\nC) <<sentence>>\nD) <<sentence>>",
        "Which statement about <<topic>> is correct?\n(A) <<sentence>>\n(B) <<sentence>>\n"
        "(C) <<sentence>>\n(D) <<sentence>>",
    ],
    "filename": [
        "{{src/|app/|lib/|}}<<ident>>.{{py|ts|go|rs|java|js|tsx}}",
    ],
    "ticket": [
        "{{Hi,|Hello,|Dear support,|}} my {{invoice|order|account|subscription}} "
        "{{shows the wrong amount|was charged twice|is locked|never arrived|cannot be updated}}"
        "{{.| since ##2-14## days.| after the last update.}} {{Order|Ref}} ###1000-99999##. "
        "{{Please help.|Thanks.|This is urgent!|}}",
    ],
    "tool_schema": [
        '{"name": "<<ident>>", "description": "{{Look up|Fetch|Search|Update}} <<data_obj>>", '
        '"parameters": {"type": "object", "properties": {"<<var=v>>": {"type": "{{string|integer}}"'
        '}}, "required": ["<<var=v>>"]}}',
    ],
}
