-- Window functions: ranking, running totals, frames, partitions, lag/lead,
-- first/last/nth value, named windows; every OVER clause fully ordered.
CREATE TABLE wn_score(player TEXT, game INTEGER, points INTEGER, PRIMARY KEY(player, game));
INSERT INTO wn_score VALUES ('amy', 1, 10), ('amy', 2, 30), ('amy', 3, 20), ('amy', 4, 30),
                            ('ben', 1, 5), ('ben', 2, 50), ('ben', 3, NULL),
                            ('cal', 1, 30), ('cal', 2, 30), ('cal', 3, 0);
SELECT player, game, points,
       row_number() OVER (PARTITION BY player ORDER BY game) AS rn,
       rank() OVER (PARTITION BY player ORDER BY points DESC) AS rk,
       dense_rank() OVER (PARTITION BY player ORDER BY points DESC) AS drk
  FROM wn_score ORDER BY player, game;
SELECT player, game, sum(points) OVER (PARTITION BY player ORDER BY game) AS running,
       avg(points) OVER (PARTITION BY player) AS mean,
       count(points) OVER (PARTITION BY player ORDER BY game ROWS BETWEEN 1 PRECEDING AND CURRENT ROW) AS c2
  FROM wn_score ORDER BY player, game;
SELECT player, game, points,
       lag(points) OVER (PARTITION BY player ORDER BY game) AS prev,
       lead(points, 1, -1) OVER (PARTITION BY player ORDER BY game) AS next,
       first_value(points) OVER (PARTITION BY player ORDER BY game) AS first,
       last_value(points) OVER (PARTITION BY player ORDER BY game
                                ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING) AS last,
       nth_value(points, 2) OVER (PARTITION BY player ORDER BY game
                                  ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING) AS second
  FROM wn_score ORDER BY player, game;
SELECT player, game, points, rank() OVER (ORDER BY points DESC NULLS LAST) AS overall,
       percent_rank() OVER (ORDER BY points) AS pr, cume_dist() OVER (ORDER BY points) AS cd,
       ntile(3) OVER (ORDER BY player, game) AS tile
  FROM wn_score ORDER BY player, game;
SELECT player, game, sum(points) OVER w AS s, max(points) OVER w AS m
  FROM wn_score WINDOW w AS (PARTITION BY player ORDER BY game RANGE BETWEEN 1 PRECEDING AND CURRENT ROW)
  ORDER BY player, game;
SELECT player, game, sum(points) OVER (ORDER BY player, game GROUPS BETWEEN 1 PRECEDING AND 1 FOLLOWING)
  FROM wn_score ORDER BY player, game;
SELECT player, total FROM (SELECT player, sum(points) AS total, rank() OVER (ORDER BY sum(points) DESC) AS r
                             FROM wn_score GROUP BY player) WHERE r = 1 ORDER BY player;
SELECT player, game, points FROM (
  SELECT *, row_number() OVER (PARTITION BY player ORDER BY points DESC, game) AS rn FROM wn_score)
  WHERE rn <= 2 ORDER BY player, rn;
SELECT game, sum(points) OVER (PARTITION BY game) FROM wn_score WHERE player <> 'ben' ORDER BY player, game;
DROP TABLE wn_score;
